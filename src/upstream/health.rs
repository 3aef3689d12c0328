//! Active health: the scheduled check of every target's health path, and
//! the results document isolates read.
//!
//! A Cron Trigger runs [`check_all`]: it reads the config, probes each
//! target of each service with `health.active` (a GET of its health path;
//! any 2xx or 3xx within the timeout passes), and stores the results under
//! the key `health` of the `CONFIG` namespace, next to the config. A
//! target goes down after `unhealthy_threshold` failed probes in a row and
//! comes back after `healthy_threshold` passing ones. Isolates read the
//! document when they refresh their config and skip targets it has down,
//! so a dead target is avoided before any user request fails; when it
//! passes again it takes traffic again, even one passive health ejected.
//! Results older than [`STALE_AFTER`] are not trusted: if the checks stop
//! running, no target stays down for good.
//!
//! KV writes are counted (a free plan allows 1,000 a day), so the check
//! stores its results only when a target's state or counts change, or when
//! the stored ones are [`REWRITE_AFTER`] old: every four minutes when
//! nothing happens, which keeps them well inside [`STALE_AFTER`].
//!
//! Which targets to probe, what a probe's result means and the next
//! document are pure functions; [`check_all`] only adds the I/O, through
//! the platform seam.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use http::header::{HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};

use super::Upstream;
use crate::body::Body;
use crate::config::{CONFIG_KEY, Config};
use crate::observe::events::Event;
use crate::platform::{
    Clock, FetchOptions, HttpClient, KvNamespace, KvStore, LogSink, PlatformError, UnixMillis,
};

/// The key of the results document in the `CONFIG` namespace.
pub const HEALTH_KEY: &str = "health";

/// How long a check's results are trusted.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Unchanged results are stored again once the stored ones are this old.
pub const REWRITE_AFTER: Duration = Duration::from_secs(240);

/// How long a client is told to wait when the check has every target down
/// (the Cron Trigger runs every minute).
pub const CHECKED_DOWN_RETRY_AFTER: u64 = 60;

/// A service's scheduled health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveHealth {
    /// Path (and query) below each target's URL, starting with `/`.
    pub path: String,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// The stored results: per service, per target URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthDocument {
    /// When the check ran (Unix milliseconds).
    pub checked_at: u64,
    pub services: BTreeMap<String, BTreeMap<String, TargetHealth>>,
}

/// One target's state after a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub up: bool,
    /// When it last went up or down (Unix milliseconds).
    pub since: u64,
    /// Probes passed in a row.
    pub passes: u32,
    /// Probes failed in a row.
    pub failures: u32,
    /// The last probe's status, if it got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the last probe got no answer, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HealthDocument {
    pub fn target(&self, service: &str, target: &str) -> Option<&TargetHealth> {
        self.services.get(service)?.get(target)
    }

    /// Until when its results may be believed.
    pub fn trusted_until(&self) -> UnixMillis {
        UnixMillis(self.checked_at).plus(STALE_AFTER)
    }

    /// Whether `other` says the same of every target (up or down, and the
    /// counts towards the thresholds), whatever the statuses and times.
    pub fn same_states(&self, other: &HealthDocument) -> bool {
        let states = |document: &HealthDocument| {
            document
                .services
                .iter()
                .flat_map(|(service, targets)| {
                    targets.iter().map(move |(target, health)| {
                        (
                            service.clone(),
                            target.clone(),
                            health.up,
                            health.passes,
                            health.failures,
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        states(self) == states(other)
    }

    /// The targets it has down, as `service target` lines (for the log).
    pub fn down(&self) -> Vec<String> {
        self.services
            .iter()
            .flat_map(|(service, targets)| {
                targets
                    .iter()
                    .filter(|(_, health)| !health.up)
                    .map(move |(target, _)| format!("{service} {target}"))
            })
            .collect()
    }
}

/// One probe to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub service: String,
    /// The target's URL as the config normalised it.
    pub target: String,
    pub url: http::Uri,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// What a probe got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Status(u16),
    Failed(String),
}

impl ProbeResult {
    /// A 2xx or 3xx passes; anything else, or no answer, fails.
    pub fn passed(&self) -> bool {
        matches!(self, ProbeResult::Status(200..=399))
    }
}

/// Every probe `config` asks for.
pub fn plan(config: &Config) -> Vec<Probe> {
    let mut probes = Vec::new();
    for service in &config.services {
        let Upstream::Balanced(balanced) = &service.upstream else {
            continue;
        };
        let Some(active) = &balanced.active else {
            continue;
        };
        for target in &balanced.targets {
            let origin = &target.origin;
            let url = format!(
                "{}://{}{}{}",
                origin.scheme, origin.authority, origin.base_path, active.path
            );
            let Ok(url) = url.parse() else {
                continue;
            };
            probes.push(Probe {
                service: service.name.clone(),
                target: target.label.to_string(),
                url,
                timeout: active.timeout,
                healthy_threshold: active.healthy_threshold,
                unhealthy_threshold: active.unhealthy_threshold,
            });
        }
    }
    probes
}

/// The results after `results`, from the previous ones. A target seen for
/// the first time starts up; targets no longer probed are dropped. Counts
/// stop at their thresholds: past them they change nothing.
pub fn next_document(
    previous: Option<&HealthDocument>,
    results: &[(Probe, ProbeResult)],
    now: UnixMillis,
) -> HealthDocument {
    let mut document = HealthDocument {
        checked_at: now.0,
        services: BTreeMap::new(),
    };
    for (probe, result) in results {
        let before = previous.and_then(|p| p.target(&probe.service, &probe.target));
        let (mut up, mut since, passes, failures) = match before {
            Some(b) => (b.up, b.since, b.passes, b.failures),
            None => (true, now.0, 0, 0),
        };
        let (passes, failures) = if result.passed() {
            (passes.saturating_add(1).min(probe.healthy_threshold), 0)
        } else {
            (0, failures.saturating_add(1).min(probe.unhealthy_threshold))
        };
        if up && failures >= probe.unhealthy_threshold {
            up = false;
            since = now.0;
        } else if !up && passes >= probe.healthy_threshold {
            up = true;
            since = now.0;
        }
        let (status, error) = match result {
            ProbeResult::Status(status) => (Some(*status), None),
            ProbeResult::Failed(reason) => (None, Some(reason.clone())),
        };
        document
            .services
            .entry(probe.service.clone())
            .or_default()
            .insert(
                probe.target.clone(),
                TargetHealth {
                    up,
                    since,
                    passes,
                    failures,
                    status,
                    error,
                },
            );
    }
    document
}

/// Parse stored results; `None` for anything unreadable (treated as no
/// results: every target up).
pub fn parse(text: &str) -> Option<HealthDocument> {
    serde_json::from_str(text).ok()
}

/// Read the results document from KV (`None` when there is none or it
/// cannot be read or parsed).
pub async fn read<P: KvStore>(platform: &P) -> Option<HealthDocument> {
    match platform.get_text(KvNamespace::Config, HEALTH_KEY).await {
        Ok(Some(text)) => parse(&text),
        _ => None,
    }
}

/// Run the scheduled check: probe every target whose service asks for it
/// and store the results if they changed (or are due to be stored again).
/// Does nothing (and stores nothing) when the config is missing, invalid
/// or asks for no checks.
pub async fn check_all<P>(platform: &P) -> Result<Option<HealthDocument>, PlatformError>
where
    P: Clock + KvStore + HttpClient + LogSink,
{
    let Some(text) = platform.get_text(KvNamespace::Config, CONFIG_KEY).await? else {
        return Ok(None);
    };
    let config = match Config::from_json(&text) {
        Ok(config) => config,
        Err(error) => {
            platform.log(&Event::ConfigRefused {
                kept_previous: false,
                errors: error.lines(),
            });
            return Ok(None);
        }
    };
    let probes = plan(&config);
    if probes.is_empty() {
        return Ok(None);
    }
    let previous = read(platform).await;
    let results = join_all(probes.into_iter().map(|probe| async move {
        let result = probe_once(platform, &probe).await;
        (probe, result)
    }))
    .await;
    let now = platform.now();
    let document = next_document(previous.as_ref(), &results, now);
    let unchanged = previous.as_ref().is_some_and(|previous| {
        previous.same_states(&document)
            && now.since(UnixMillis(previous.checked_at)) < REWRITE_AFTER
    });
    if !unchanged {
        let text = serde_json::to_string(&document)
            .map_err(|e| PlatformError(format!("health results: {e}")))?;
        platform
            .put_text(KvNamespace::Config, HEALTH_KEY, &text)
            .await?;
    }
    platform.log(&Event::HealthChecked {
        targets: results.len(),
        down: document.down(),
        stored: !unchanged,
    });
    Ok(Some(document))
}

async fn probe_once<P: HttpClient>(platform: &P, probe: &Probe) -> ProbeResult {
    let mut request = http::Request::new(Body::Empty);
    *request.uri_mut() = probe.url.clone();
    request
        .headers_mut()
        .insert(USER_AGENT, HeaderValue::from_static("portico-health-check"));
    let options = FetchOptions {
        timeout: probe.timeout,
    };
    match platform.fetch(request, options).await {
        Ok(response) => ProbeResult::Status(response.status().as_u16()),
        Err(error) => ProbeResult::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(target: &str) -> Probe {
        Probe {
            service: "orders".to_owned(),
            target: target.to_owned(),
            url: format!("{target}/health").parse().unwrap(),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }

    fn run(previous: Option<&HealthDocument>, result: ProbeResult, at: u64) -> HealthDocument {
        next_document(previous, &[(probe("http://a:1"), result)], UnixMillis(at))
    }

    #[test]
    fn a_target_goes_down_and_up_only_after_its_thresholds() {
        let fail = || ProbeResult::Failed("connection refused".to_owned());
        let first = run(None, fail(), 1);
        let a = first.target("orders", "http://a:1").unwrap();
        assert!(a.up, "one failure is not enough");
        assert_eq!(a.error.as_deref(), Some("connection refused"));
        let second = run(Some(&first), fail(), 2);
        let a = second.target("orders", "http://a:1").unwrap();
        assert!(!a.up);
        assert_eq!(a.since, 2);
        assert_eq!(second.down(), ["orders http://a:1"]);
        let third = run(Some(&second), ProbeResult::Status(200), 3);
        assert!(!third.target("orders", "http://a:1").unwrap().up);
        let fourth = run(Some(&third), ProbeResult::Status(204), 4);
        let a = fourth.target("orders", "http://a:1").unwrap();
        assert!(a.up);
        assert_eq!((a.since, a.passes, a.failures), (4, 2, 0));
        let fifth = run(Some(&fourth), ProbeResult::Status(200), 5);
        assert_eq!(fifth.target("orders", "http://a:1").unwrap().passes, 2);
        assert!(fifth.same_states(&fourth), "counts stop at the thresholds");
        assert!(!fourth.same_states(&third));
    }

    #[test]
    fn statuses_from_400_up_fail_a_probe() {
        assert!(ProbeResult::Status(200).passed());
        assert!(ProbeResult::Status(302).passed());
        assert!(!ProbeResult::Status(404).passed());
        assert!(!ProbeResult::Status(503).passed());
        assert!(!ProbeResult::Failed("x".to_owned()).passed());
    }

    #[test]
    fn targets_no_longer_probed_are_dropped_and_results_expire() {
        let first = run(None, ProbeResult::Status(200), 10);
        let second = next_document(
            Some(&first),
            &[(probe("http://b:1"), ProbeResult::Status(200))],
            UnixMillis(20),
        );
        assert!(second.target("orders", "http://a:1").is_none());
        assert_eq!(second.trusted_until(), UnixMillis(20).plus(STALE_AFTER));
        let text = serde_json::to_string(&second).unwrap();
        assert_eq!(parse(&text), Some(second));
        assert_eq!(parse("not json"), None);
    }
}
