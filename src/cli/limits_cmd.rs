//! `portico limits show KEY_ID`: where an API key stands on every
//! rate-limit policy that counts per key, read from a running gateway's
//! operators' API (`admin.token_secret` in the config).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Verdict;

#[derive(Subcommand, Debug)]
pub enum LimitsCommand {
    /// Show a key's current state on every per-key rate limit.
    Show {
        /// The key id (12 hex digits, as `portico keys list` shows).
        id: String,
        #[command(flatten)]
        gateway: GatewayTarget,
        #[arg(long)]
        json: bool,
    },
}

/// Which gateway to ask, and with what token.
#[derive(Args, Debug)]
pub struct GatewayTarget {
    /// The gateway's base URL (or PORTICO_GATEWAY).
    #[arg(
        long,
        value_name = "URL",
        env = "PORTICO_GATEWAY",
        default_value = "http://127.0.0.1:8787"
    )]
    pub gateway: String,
    /// The admin token (or PORTICO_ADMIN_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PORTICO_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: String,
}

pub(crate) fn run(command: LimitsCommand) -> Result<Verdict, String> {
    match command {
        LimitsCommand::Show { id, gateway, json } => show(&id, &gateway, json),
    }
}

fn show(id: &str, target: &GatewayTarget, json: bool) -> Result<Verdict, String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "'{id}' is not a key id (12 hex digits, as `keys list` shows)"
        ));
    }
    let url = format!(
        "{}/__portico/limits/keys/{id}",
        target.gateway.trim_end_matches('/')
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .header("authorization", &format!("Bearer {}", target.admin_token))
        .call()
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("unreadable answer from {url} ({status}): {e}"))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("unexpected answer from {url} ({status}): {e}"))?;
    if status != 200 {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        if status == 404 {
            eprintln!("{detail}");
            return Ok(Verdict::Refused);
        }
        return Err(format!("{url} answered {status}: {detail}"));
    }
    if json {
        println!("{body}");
        return Ok(Verdict::Accepted);
    }
    let rate = body["rate"]
        .as_object()
        .map(|r| {
            format!(
                ", own rate plan {} per {} s",
                r["limit"], r["period_seconds"]
            )
        })
        .unwrap_or_default();
    println!(
        "key {} ({}, {}){rate}",
        body["key_id"].as_str().unwrap_or(id),
        body["consumer"].as_str().unwrap_or("?"),
        body["state"].as_str().unwrap_or("?")
    );
    let limits = body["limits"].as_array().cloned().unwrap_or_default();
    if limits.is_empty() {
        println!("no per-key rate limits apply to it");
        return Ok(Verdict::Accepted);
    }
    println!(
        "{:<16} {:<14} {:<13} {:>16} {:>10} {:>9}  STATE",
        "ROUTE", "POLICY", "ALGORITHM", "LIMIT/PERIOD", "REMAINING", "RESET"
    );
    for limit in limits {
        let period_ms = limit["period_ms"].as_u64().unwrap_or(0);
        let reset_ms = limit["reset_after_ms"].as_u64().unwrap_or(0);
        println!(
            "{:<16} {:<14} {:<13} {:>16} {:>10} {:>8}s  {}",
            limit["route"].as_str().unwrap_or("?"),
            limit["policy"].as_str().unwrap_or("?"),
            limit["algorithm"].as_str().unwrap_or("?"),
            format!("{}/{}", limit["limit"], human(period_ms)),
            limit["remaining"].to_string(),
            reset_ms.div_ceil(1000),
            if limit["stored"].as_bool().unwrap_or(false) {
                "stored"
            } else {
                "idle (nothing stored)"
            }
        );
    }
    Ok(Verdict::Accepted)
}

fn human(ms: u64) -> String {
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}
