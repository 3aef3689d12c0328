//! `portico keys`: create, list, show, revoke and rotate API keys in the
//! `KEYS` namespace, through wrangler.
//!
//! A key is printed once, at creation or rotation; KV only ever holds its
//! SHA-256. Revocation marks the record disabled (it stays for audit).
//! Rotation creates a successor with the same consumer, roles, scopes and
//! rate plan, and lets the old key work for a grace period (24 hours by
//! default) so clients can switch without downtime.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use serde_json::{Value, json};

use super::Verdict;
use super::wrangler::{self, KvTarget};
use crate::auth::RatePlan;
use crate::auth::api_key::{self, KeyRecord};
use crate::config::duration::parse_duration;
use crate::platform::KvNamespace;
use crate::ratelimit::{MAX_LIMIT, MAX_PERIOD_SECONDS};

const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        /// The consumer the key belongs to.
        #[arg(long)]
        name: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Scopes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Rate plan, N/PERIOD: 5/60s, 100/1m, 5000/1h, 100000/1d.
        #[arg(long, value_name = "N/PERIOD")]
        rate: Option<String>,
        /// Expiry: 2027-01-31 (midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: KvTarget,
    },
    /// List keys (id, consumer, state, roles, expiry).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: KvTarget,
    },
    /// Show a key's record.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: KvTarget,
    },
    /// Disable a key for good.
    Revoke {
        id: String,
        #[command(flatten)]
        target: KvTarget,
    },
    /// Replace a key: print a new one; the old one works for a grace period.
    Rotate {
        id: String,
        /// How long the old key keeps working: 0s, 30m, 24h, 7d.
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: KvTarget,
    },
}

pub(crate) fn run(command: KeysCommand) -> Result<Verdict, String> {
    match command {
        KeysCommand::Create {
            name,
            roles,
            scopes,
            rate,
            expires,
            json,
            target,
        } => {
            let options = NewKey {
                name,
                roles: clean(roles),
                scopes: clean(scopes),
                rate: rate.as_deref().map(parse_rate).transpose()?,
                expires_at: expires.as_deref().map(parse_date).transpose()?,
            };
            create(options, json, &target)
        }
        KeysCommand::List { json, target } => list(json, &target),
        KeysCommand::Show { id, json, target } => show(&id, json, &target),
        KeysCommand::Revoke { id, target } => revoke(&id, &target),
        KeysCommand::Rotate {
            id,
            grace,
            json,
            target,
        } => {
            let grace = grace
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .unwrap_or(DEFAULT_GRACE);
            rotate(&id, grace, json, &target)
        }
    }
}

struct NewKey {
    name: String,
    roles: Vec<String>,
    scopes: Vec<String>,
    rate: Option<RatePlan>,
    expires_at: Option<u64>,
}

fn clean(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

fn now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

fn fresh_key() -> Result<(String, String), String> {
    let mut random = [0u8; 38];
    getrandom::getrandom(&mut random).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(api_key::generate(&random))
}

fn store(record: &KeyRecord, target: &KvTarget) -> Result<(), String> {
    let value = serde_json::to_string(record).map_err(|e| e.to_string())?;
    wrangler::kv_put_with_metadata(
        KvNamespace::Keys.binding(),
        &api_key::kv_key(&record.id),
        &value,
        Some(&metadata(record)),
        target,
    )
    .map_err(|e| e.to_string())
}

/// The summary kept in KV metadata (at most 1024 bytes), for listings.
fn metadata(record: &KeyRecord) -> String {
    let mut roles = record.roles.clone();
    loop {
        let text = json!({
            "name": record.name,
            "roles": roles,
            "disabled": record.disabled,
            "expires_at": record.expires_at,
            "created_at": record.created_at,
            "rotated_to": record.rotated_to,
        })
        .to_string();
        if text.len() <= 1000 || roles.is_empty() {
            return text;
        }
        roles.pop();
    }
}

fn load(id: &str, target: &KvTarget) -> Result<KeyRecord, String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "'{id}' is not a key id (12 hex digits, as `keys list` shows)"
        ));
    }
    let text = wrangler::kv_get(KvNamespace::Keys.binding(), &api_key::kv_key(id), target)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no key with id {id} ({})", target.describe()))?;
    serde_json::from_str(text.trim())
        .map_err(|e| format!("the record of key {id} is unreadable: {e}"))
}

fn state(record: &KeyRecord, now: u64) -> &'static str {
    if record.disabled {
        "revoked"
    } else if !record.usable_at(now) {
        "expired"
    } else if record.rotated_to.is_some() {
        "rotating"
    } else {
        "active"
    }
}

fn time(seconds: Option<u64>) -> String {
    seconds
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

fn print_new(record: &KeyRecord, key: &str, json: bool, target: &KvTarget, verb: &str) {
    if json {
        println!(
            "{}",
            json!({
                "id": record.id,
                "key": key,
                "name": record.name,
                "roles": record.roles,
                "scopes": record.scopes,
                "rate": record.rate,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
            })
        );
    } else {
        println!(
            "{verb} API key {} for '{}' ({}).",
            record.id,
            record.name,
            target.describe()
        );
        println!("The key is shown only now; store it safely:\n\n  {key}\n");
    }
}

fn create(options: NewKey, json: bool, target: &KvTarget) -> Result<Verdict, String> {
    if options.name.trim().is_empty() {
        return Err("--name must not be empty".to_owned());
    }
    let (id, key) = fresh_key()?;
    let mut record = KeyRecord::new(&id, &key, options.name.trim(), now());
    record.roles = options.roles;
    record.scopes = options.scopes;
    record.rate = options.rate;
    record.expires_at = options.expires_at;
    store(&record, target)?;
    print_new(&record, &key, json, target, "Created");
    Ok(Verdict::Accepted)
}

fn list(json: bool, target: &KvTarget) -> Result<Verdict, String> {
    let listed = wrangler::kv_list(KvNamespace::Keys.binding(), "key:", target)
        .map_err(|e| e.to_string())?;
    let now = now();
    let rows: Vec<Value> = listed
        .into_iter()
        .map(|entry| {
            let id = entry.name.trim_start_matches("key:").to_owned();
            let mut row = entry.metadata.unwrap_or_else(|| json!({}));
            row["id"] = json!(id);
            row
        })
        .collect();
    if json {
        println!("{}", Value::Array(rows));
        return Ok(Verdict::Accepted);
    }
    println!(
        "{:<14} {:<20} {:<9} {:<24} EXPIRES",
        "ID", "CONSUMER", "STATE", "ROLES"
    );
    for row in rows {
        let record_like = KeyRecord {
            id: String::new(),
            name: String::new(),
            hash: String::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            rate: None,
            created_at: 0,
            expires_at: row["expires_at"].as_u64(),
            disabled: row["disabled"].as_bool().unwrap_or(false),
            revoked_at: None,
            rotated_to: row["rotated_to"].as_str().map(str::to_owned),
        };
        let roles = row["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        println!(
            "{:<14} {:<20} {:<9} {:<24} {}",
            row["id"].as_str().unwrap_or("?"),
            row["name"].as_str().unwrap_or("?"),
            state(&record_like, now),
            roles,
            time(record_like.expires_at)
        );
    }
    Ok(Verdict::Accepted)
}

fn show(id: &str, json: bool, target: &KvTarget) -> Result<Verdict, String> {
    let record = load(id, target)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?
        );
        return Ok(Verdict::Accepted);
    }
    let rate = record.rate.map_or_else(
        || "-".to_owned(),
        |r| format!("{} per {} s", r.limit, r.period_seconds),
    );
    println!("id          {}", record.id);
    println!("consumer    {}", record.name);
    println!("state       {}", state(&record, now()));
    println!("roles       {}", record.roles.join(","));
    println!("scopes      {}", record.scopes.join(","));
    println!("rate        {rate}");
    println!("created     {}", time(Some(record.created_at)));
    println!("expires     {}", time(record.expires_at));
    println!("revoked     {}", time(record.revoked_at));
    println!(
        "rotated to  {}",
        record.rotated_to.as_deref().unwrap_or("-")
    );
    Ok(Verdict::Accepted)
}

fn revoke(id: &str, target: &KvTarget) -> Result<Verdict, String> {
    let mut record = load(id, target)?;
    record.disabled = true;
    record.revoked_at = Some(now());
    store(&record, target)?;
    println!(
        "Revoked API key {id} ('{}'). Gateways stop accepting it within auth.api_keys.cache_seconds \
         (30 s by default); on Cloudflare allow up to 60 s more for KV to propagate.",
        record.name
    );
    Ok(Verdict::Accepted)
}

fn rotate(id: &str, grace: Duration, json: bool, target: &KvTarget) -> Result<Verdict, String> {
    let mut old = load(id, target)?;
    if old.disabled {
        return Err(format!("key {id} is revoked; create a new one instead"));
    }
    let now = now();
    let (new_id, key) = fresh_key()?;
    let mut new = KeyRecord::new(&new_id, &key, &old.name, now);
    new.roles = old.roles.clone();
    new.scopes = old.scopes.clone();
    new.rate = old.rate;
    new.expires_at = old.expires_at;
    store(&new, target)?;
    let grace_end = now.saturating_add(grace.as_secs());
    old.expires_at = Some(old.expires_at.map_or(grace_end, |e| e.min(grace_end)));
    old.rotated_to = Some(new_id.clone());
    store(&old, target)?;
    print_new(&new, &key, json, target, "Rotated: new");
    if !json {
        println!(
            "The old key {id} keeps working until {}.",
            time(old.expires_at)
        );
    }
    Ok(Verdict::Accepted)
}

/// `N/PERIOD`: `5/60s`, `100/1m`, `5000/1h`, `100000/1d`.
pub fn parse_rate(text: &str) -> Result<RatePlan, String> {
    let (limit, period) = text
        .split_once('/')
        .ok_or_else(|| format!("'{text}' is not a rate like 5/60s or 100/1m"))?;
    let limit: u64 = limit
        .trim()
        .parse()
        .map_err(|_| format!("'{text}': the limit must be a whole number"))?;
    let period = parse_duration(period)?;
    if period.subsec_millis() != 0 {
        return Err(format!("'{text}': the period must be whole seconds"));
    }
    if limit == 0 || period.is_zero() {
        return Err(format!(
            "'{text}': limit and period must both be above zero"
        ));
    }
    // The gateway refuses larger plans (and a sliding-log route refuses
    // limits over its own cap) and applies the route's plan instead.
    if limit > MAX_LIMIT || period.as_secs() > MAX_PERIOD_SECONDS {
        return Err(format!(
            "'{text}': at most {MAX_LIMIT} per period, and periods of at most 31d"
        ));
    }
    Ok(RatePlan {
        limit,
        period_seconds: period.as_secs(),
    })
}

/// `2027-01-31` (midnight UTC) or an RFC 3339 time, as Unix seconds.
pub fn parse_date(text: &str) -> Result<u64, String> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .map_or(0, |t| t.and_utc().timestamp())
            })
        })
        .map_err(|_| format!("'{text}' is not a date (2027-01-31) or RFC 3339 time"))?;
    u64::try_from(parsed).map_err(|_| format!("'{text}' is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_parse() {
        assert_eq!(
            parse_rate("5/60s"),
            Ok(RatePlan {
                limit: 5,
                period_seconds: 60
            })
        );
        assert_eq!(
            parse_rate("100/1m"),
            Ok(RatePlan {
                limit: 100,
                period_seconds: 60
            })
        );
        assert_eq!(
            parse_rate("1000/1d"),
            Ok(RatePlan {
                limit: 1000,
                period_seconds: 86_400
            })
        );
        assert!(parse_rate("0/1m").is_err());
        assert!(parse_rate("5/32d").is_err());
        assert!(parse_rate("1000000001/1m").is_err());
        assert!(parse_rate("5").is_err());
        assert!(parse_rate("5/1w").is_err());
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn dates_parse_as_utc() {
        assert_eq!(parse_date("2027-01-01"), Ok(1_798_761_600));
        assert_eq!(parse_date("2027-01-01T01:00:00+01:00"), Ok(1_798_761_600));
        assert!(parse_date("next tuesday").is_err());
    }
}
