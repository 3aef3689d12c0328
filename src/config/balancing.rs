//! Checking what makes a service balanced: its targets, algorithm, hash
//! key, retry policy and health checks, each into the domain types of
//! [`crate::upstream`] with every mistake at its JSON path.
//!
//! What depends on the routes (a hashed path parameter they must capture,
//! a consumer they must authenticate) is checked with the routes.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use http::HeaderName;
use http::uri::PathAndQuery;

use super::error::Issues;
use super::wire::{
    ActiveHealthDocument, BackoffDocument, BalanceAlgorithm, BudgetDocument, HashOnDocument,
    PassiveHealthDocument, RetryDocument, RetryOnName, ServiceDocument, TargetDocument,
};
use crate::upstream::balanced::{Algorithm, Balanced, HashOn, Target};
use crate::upstream::geo::{CONTINENTS, Place, code};
use crate::upstream::hash::Ring;
use crate::upstream::health::ActiveHealth;
use crate::upstream::outlier::PassiveHealth;
use crate::upstream::retry::{Backoff, BudgetPolicy, RetryMethods, RetryOn, RetryPolicy};
use crate::upstream::{Origin, Upstream};

pub(super) const MAX_TARGETS: usize = 256;
const MAX_WEIGHT: u32 = 1000;
const MAX_ATTEMPTS: u32 = 10;
const DEFAULT_ATTEMPTS: u32 = 3;
const DEFAULT_BACKOFF_BASE_MS: u64 = 25;
const DEFAULT_BACKOFF_MAX_MS: u64 = 250;
const MAX_BACKOFF_MS: u64 = 60_000;
const DEFAULT_RETRY_BODY_BYTES: u64 = 64 * 1024;
const MAX_RETRY_BODY_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_BUDGET_RATIO: f64 = 0.2;
const DEFAULT_BUDGET_MIN_RETRIES: u32 = 10;
const MAX_BUDGET_MIN_RETRIES: u32 = 10_000;
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
const DEFAULT_BASE_EJECTION_MS: u64 = 30_000;
const DEFAULT_MAX_EJECTION_MS: u64 = 300_000;
const MAX_EJECTION_MS: u64 = 3_600_000;
const DEFAULT_MAX_EJECTED_PERCENT: u32 = 50;
const DEFAULT_PROBE_TIMEOUT_MS: u64 = 2_000;
const MAX_PROBE_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_HEALTHY_THRESHOLD: u32 = 1;
const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 2;
const MAX_THRESHOLD: u32 = 100;

/// Whether a service needs a balanced upstream: several targets, or
/// anything that keeps state (retries, health checks, an algorithm).
pub(super) fn is_balanced(document: &ServiceDocument, retried_by_a_route: bool) -> bool {
    document.targets.is_some()
        || document.algorithm.is_some()
        || document.hash_on.is_some()
        || document.retry.is_some()
        || document.health.is_some()
        || retried_by_a_route
}

/// The balanced upstream of service `name` (at `at`), whose targets are
/// `targets` (from `targets`, or its one `url`), parsed by `parse_origin`.
pub(super) fn check_balanced(
    name: &str,
    document: &ServiceDocument,
    at: &str,
    slot: usize,
    parse_origin: impl Fn(&str) -> Result<Origin, String>,
    issues: &mut Issues,
) -> Option<Upstream> {
    let before = issues.len();
    let targets = match (&document.url, &document.targets) {
        (Some(url), None) => match parse_origin(url) {
            Ok(origin) => vec![target(origin, 1, Place::default())],
            Err(reason) => {
                issues.push(format!("{at}.url"), reason);
                Vec::new()
            }
        },
        (None, Some(targets)) => check_targets(targets, at, &parse_origin, issues),
        _ => Vec::new(),
    };
    let algorithm = check_algorithm(document, at, issues);
    let retry = document
        .retry
        .as_ref()
        .and_then(|retry| check_retry(retry, &format!("{at}.retry"), issues))
        .map(Rc::new);
    let (passive, active) = match &document.health {
        Some(health) => (
            health
                .passive
                .as_ref()
                .and_then(|p| check_passive(p, &format!("{at}.health.passive"), issues)),
            health
                .active
                .as_ref()
                .and_then(|a| check_active(a, &format!("{at}.health.active"), issues)),
        ),
        None => (None, None),
    };
    if issues.len() != before || targets.is_empty() {
        return None;
    }
    let algorithm = algorithm?;
    let ring = match algorithm {
        Algorithm::ConsistentHash(_) => {
            Ring::build(targets.iter().map(|target| (&*target.label, target.weight)))
        }
        _ => Ring::default(),
    };
    Some(Upstream::Balanced(Rc::new(Balanced {
        service: Rc::from(name),
        geo: targets.iter().any(|target| target.place.is_known()),
        targets,
        algorithm,
        ring,
        retry,
        passive,
        active,
        slot,
    })))
}

fn target(origin: Origin, weight: u32, place: Place) -> Target {
    Target {
        label: Rc::from(origin.to_string()),
        authority: Rc::from(origin.authority.as_str()),
        origin,
        weight,
        place,
    }
}

fn check_targets(
    documents: &[TargetDocument],
    at: &str,
    parse_origin: &impl Fn(&str) -> Result<Origin, String>,
    issues: &mut Issues,
) -> Vec<Target> {
    if documents.is_empty() {
        issues.push(format!("{at}.targets"), "the list is empty");
        return Vec::new();
    }
    if documents.len() > MAX_TARGETS {
        issues.push(
            format!("{at}.targets"),
            format!("at most {MAX_TARGETS} targets, got {}", documents.len()),
        );
        return Vec::new();
    }
    let mut targets = Vec::with_capacity(documents.len());
    let mut seen = HashSet::new();
    for (index, document) in documents.iter().enumerate() {
        let at = format!("{at}.targets[{index}]");
        let origin = parse_origin(&document.url)
            .map_err(|reason| issues.push(format!("{at}.url"), reason))
            .ok();
        let weight = document.weight.unwrap_or(1);
        if !(1..=MAX_WEIGHT).contains(&weight) {
            issues.push(
                format!("{at}.weight"),
                format!("weights must be positive: 1 to {MAX_WEIGHT}, got {weight}"),
            );
        }
        let continent = document.continent.as_deref().and_then(|text| {
            let found = CONTINENTS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(text))
                .then(|| code(text))
                .flatten();
            if found.is_none() {
                issues.push(
                    format!("{at}.continent"),
                    format!(
                        "'{text}' is not a continent code; use one of {}",
                        CONTINENTS.join(", ")
                    ),
                );
            }
            found
        });
        let country = document.country.as_deref().and_then(|text| {
            let found = code(text);
            if found.is_none() {
                issues.push(
                    format!("{at}.country"),
                    format!("'{text}' is not a two-letter country code (ISO 3166-1)"),
                );
            }
            found
        });
        if let Some(origin) = origin {
            let target = target(origin, weight, Place { continent, country });
            if !seen.insert(Rc::clone(&target.label)) {
                issues.push(
                    format!("{at}.url"),
                    format!("'{}' is listed twice", target.label),
                );
            }
            targets.push(target);
        }
    }
    targets
}

fn check_algorithm(document: &ServiceDocument, at: &str, issues: &mut Issues) -> Option<Algorithm> {
    let algorithm = document.algorithm.unwrap_or(BalanceAlgorithm::RoundRobin);
    match (algorithm, &document.hash_on) {
        (BalanceAlgorithm::ConsistentHash, None) => {
            issues.push(
                format!("{at}.hash_on"),
                "consistent_hash needs 'hash_on': \"consumer\", \"ip\", {\"header\": NAME} or {\"param\": NAME}",
            );
            None
        }
        (BalanceAlgorithm::ConsistentHash, Some(on)) => {
            check_hash_on(on, &format!("{at}.hash_on"), issues).map(Algorithm::ConsistentHash)
        }
        (_, Some(_)) => {
            issues.push(
                format!("{at}.hash_on"),
                "only a consistent_hash service hashes; set 'algorithm' to \"consistent_hash\" or remove 'hash_on'",
            );
            None
        }
        (BalanceAlgorithm::RoundRobin, None) => Some(Algorithm::RoundRobin),
        (BalanceAlgorithm::Random, None) => Some(Algorithm::Random),
        (BalanceAlgorithm::LeastRequest, None) => Some(Algorithm::LeastRequest),
    }
}

fn check_hash_on(document: &HashOnDocument, at: &str, issues: &mut Issues) -> Option<HashOn> {
    match document {
        HashOnDocument::Consumer => Some(HashOn::Consumer),
        HashOnDocument::Ip => Some(HashOn::Ip),
        HashOnDocument::Header(name) => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => Some(HashOn::Header(header)),
            Err(_) => {
                issues.push(
                    format!("{at}.header"),
                    format!("'{name}' is not a valid header name"),
                );
                None
            }
        },
        HashOnDocument::Param(name) if !name.is_empty() => Some(HashOn::Param(name.clone())),
        HashOnDocument::Param(_) => {
            issues.push(format!("{at}.param"), "name a path parameter");
            None
        }
    }
}

/// A retry policy, or `None` (with issues) when it is invalid.
pub(super) fn check_retry(
    document: &RetryDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<RetryPolicy> {
    let before = issues.len();
    let attempts = document.attempts.unwrap_or(DEFAULT_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS).contains(&attempts) {
        issues.push(
            format!("{at}.attempts"),
            format!("tries in all, the first included: 1 to {MAX_ATTEMPTS}, got {attempts}"),
        );
    }
    let on = check_retry_on(document, at, issues);
    let per_try_timeout = document.per_try_timeout_ms.map(|ms| {
        super::services::check_timeout(
            Some(ms),
            Duration::ZERO,
            format!("{at}.per_try_timeout_ms"),
            issues,
        )
    });
    if on.timeout && per_try_timeout.is_none() {
        issues.push(
            format!("{at}.on"),
            "retrying on timeout needs 'per_try_timeout_ms' shorter than the route's timeout, or the first try uses all of it",
        );
    }
    let backoff = check_backoff(document.backoff.as_ref(), at, issues);
    let max_body_bytes = document.max_body_bytes.unwrap_or(DEFAULT_RETRY_BODY_BYTES);
    if max_body_bytes > MAX_RETRY_BODY_BYTES {
        issues.push(
            format!("{at}.max_body_bytes"),
            format!(
                "at most {MAX_RETRY_BODY_BYTES} bytes are kept for a retry, got {max_body_bytes}"
            ),
        );
    }
    let budget = check_budget(document.budget.as_ref(), at, issues);
    if issues.len() != before {
        return None;
    }
    Some(RetryPolicy {
        attempts,
        on,
        per_try_timeout,
        backoff,
        methods: if document.non_idempotent == Some(true) {
            RetryMethods::Any
        } else {
            RetryMethods::Idempotent
        },
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        budget: Some(budget),
    })
}

/// What is retried: connection errors, timeouts, and which statuses.
fn check_retry_on(document: &RetryDocument, at: &str, issues: &mut Issues) -> RetryOn {
    let names = document
        .on
        .clone()
        .unwrap_or_else(|| vec![RetryOnName::ConnectError, RetryOnName::GatewayError]);
    let mut on = RetryOn {
        connect_error: names.contains(&RetryOnName::ConnectError),
        timeout: names.contains(&RetryOnName::Timeout),
        statuses: if names.contains(&RetryOnName::GatewayError) {
            vec![502, 503, 504]
        } else {
            Vec::new()
        },
    };
    for (index, &status) in document.statuses.iter().flatten().enumerate() {
        if (400..=599).contains(&status) {
            on.statuses.push(status);
        } else {
            issues.push(
                format!("{at}.statuses[{index}]"),
                format!("only error statuses (400 to 599) are retried, got {status}"),
            );
        }
    }
    on.statuses.sort_unstable();
    on.statuses.dedup();
    on
}

/// The back-off between tries: from `base_ms`, doubling, to `max_ms`.
fn check_backoff(document: Option<&BackoffDocument>, at: &str, issues: &mut Issues) -> Backoff {
    let base = document
        .and_then(|b| b.base_ms)
        .unwrap_or(DEFAULT_BACKOFF_BASE_MS);
    let max = document
        .and_then(|b| b.max_ms)
        .unwrap_or(DEFAULT_BACKOFF_MAX_MS.max(base));
    if base > MAX_BACKOFF_MS {
        issues.push(
            format!("{at}.backoff.base_ms"),
            format!("0 to {MAX_BACKOFF_MS} milliseconds, got {base}"),
        );
    }
    if max > MAX_BACKOFF_MS || max < base {
        issues.push(
            format!("{at}.backoff.max_ms"),
            format!("from base_ms ({base}) to {MAX_BACKOFF_MS} milliseconds, got {max}"),
        );
    }
    Backoff {
        base: Duration::from_millis(base),
        max: Duration::from_millis(max),
    }
}

/// The retry budget: retries per request, and a floor.
fn check_budget(document: Option<&BudgetDocument>, at: &str, issues: &mut Issues) -> BudgetPolicy {
    let ratio = document
        .and_then(|b| b.ratio)
        .unwrap_or(DEFAULT_BUDGET_RATIO);
    if !(0.0..=1.0).contains(&ratio) {
        issues.push(
            format!("{at}.budget.ratio"),
            format!("retries per request: 0 to 1, got {ratio}"),
        );
    }
    let min_retries = document
        .and_then(|b| b.min_retries)
        .unwrap_or(DEFAULT_BUDGET_MIN_RETRIES);
    if min_retries > MAX_BUDGET_MIN_RETRIES {
        issues.push(
            format!("{at}.budget.min_retries"),
            format!("at most {MAX_BUDGET_MIN_RETRIES}, got {min_retries}"),
        );
    }
    BudgetPolicy {
        // Kept within 0 to 1 (checked above), so the product fits.
        ratio_millionths: (ratio.clamp(0.0, 1.0) * 1_000_000.0).round() as u32,
        min_retries,
    }
}

fn check_passive(
    document: &PassiveHealthDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<PassiveHealth> {
    let before = issues.len();
    let consecutive_failures = document
        .consecutive_failures
        .unwrap_or(DEFAULT_CONSECUTIVE_FAILURES);
    if !(1..=1000).contains(&consecutive_failures) {
        issues.push(
            format!("{at}.consecutive_failures"),
            format!("1 to 1000, got {consecutive_failures}"),
        );
    }
    let base = document
        .base_ejection_ms
        .unwrap_or(DEFAULT_BASE_EJECTION_MS);
    if !(1..=MAX_EJECTION_MS).contains(&base) {
        issues.push(
            format!("{at}.base_ejection_ms"),
            format!("1 to {MAX_EJECTION_MS} milliseconds, got {base}"),
        );
    }
    let max = document
        .max_ejection_ms
        .unwrap_or(DEFAULT_MAX_EJECTION_MS.max(base));
    if max < base || max > MAX_EJECTION_MS {
        issues.push(
            format!("{at}.max_ejection_ms"),
            format!("from base_ejection_ms ({base}) to {MAX_EJECTION_MS} milliseconds, got {max}"),
        );
    }
    let percent = document
        .max_ejected_percent
        .unwrap_or(DEFAULT_MAX_EJECTED_PERCENT);
    if !(1..=100).contains(&percent) {
        issues.push(
            format!("{at}.max_ejected_percent"),
            format!("1 to 100, got {percent}"),
        );
    }
    (issues.len() == before).then(|| PassiveHealth {
        consecutive_failures,
        base_ejection: Duration::from_millis(base),
        max_ejection: Duration::from_millis(max),
        max_ejected_percent: percent,
    })
}

fn check_active(
    document: &ActiveHealthDocument,
    at: &str,
    issues: &mut Issues,
) -> Option<ActiveHealth> {
    let before = issues.len();
    if !document.path.starts_with('/')
        || document.path.contains('#')
        || PathAndQuery::try_from(document.path.as_str()).is_err()
    {
        issues.push(
            format!("{at}.path"),
            format!(
                "'{}' is not a path: start with '/', no fragment",
                document.path
            ),
        );
    }
    let timeout_ms = document.timeout_ms.unwrap_or(DEFAULT_PROBE_TIMEOUT_MS);
    if !(1..=MAX_PROBE_TIMEOUT_MS).contains(&timeout_ms) {
        issues.push(
            format!("{at}.timeout_ms"),
            format!("1 to {MAX_PROBE_TIMEOUT_MS} milliseconds, got {timeout_ms}"),
        );
    }
    let mut threshold = |value: Option<u32>, default: u32, field: &str| {
        let value = value.unwrap_or(default);
        if !(1..=MAX_THRESHOLD).contains(&value) {
            issues.push(
                format!("{at}.{field}"),
                format!("1 to {MAX_THRESHOLD} probes, got {value}"),
            );
        }
        value
    };
    let healthy_threshold = threshold(
        document.healthy_threshold,
        DEFAULT_HEALTHY_THRESHOLD,
        "healthy_threshold",
    );
    let unhealthy_threshold = threshold(
        document.unhealthy_threshold,
        DEFAULT_UNHEALTHY_THRESHOLD,
        "unhealthy_threshold",
    );
    (issues.len() == before).then(|| ActiveHealth {
        path: document.path.clone(),
        timeout: Duration::from_millis(timeout_ms),
        healthy_threshold,
        unhealthy_threshold,
    })
}
