//! `portico cache purge`: retire cached responses on a running gateway,
//! through its operators' API (`admin.token_secret` in the config).
//!
//! What a purge reaches: the Cache API keeps entries per data centre, so
//! `--route` and `--url` act in the data centre that answers the call
//! (the route within a few seconds in every isolate there). To retire a
//! route's entries everywhere, change its `cache.generation` and push the
//! config.

use clap::{ArgGroup, Subcommand};
use serde_json::Value;

use super::Verdict;
use super::limits_cmd::GatewayTarget;

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Retire a route's entries, or the shared entry of one URL, in the
    /// data centre that answers.
    #[command(group(ArgGroup::new("what").required(true).args(["route", "url"])))]
    Purge {
        /// Every entry of this route.
        #[arg(long, value_name = "ID")]
        route: Option<String>,
        /// The entry a plain GET of this absolute URL is answered from
        /// (routes whose entries are shared).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        #[command(flatten)]
        gateway: GatewayTarget,
    },
}

pub(crate) fn run(command: CacheCommand) -> Result<Verdict, String> {
    match command {
        CacheCommand::Purge {
            route,
            url,
            gateway,
        } => purge(route.as_deref(), url.as_deref(), &gateway),
    }
}

fn purge(
    route: Option<&str>,
    url: Option<&str>,
    target: &GatewayTarget,
) -> Result<Verdict, String> {
    let base = target.gateway.trim_end_matches('/');
    let endpoint = match (route, url) {
        (Some(route), _) => format!("{base}/__portico/cache/routes/{route}"),
        (None, Some(url)) => {
            let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
            format!("{base}/__portico/cache/urls?url={encoded}")
        }
        (None, None) => return Err("say what to purge: --route ID or --url URL".to_owned()),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .delete(&endpoint)
        .header("authorization", &format!("Bearer {}", target.admin_token))
        .call()
        .map_err(|e| format!("cannot reach {endpoint}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("unreadable answer from {endpoint} ({status}): {e}"))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("unexpected answer from {endpoint} ({status}): {e}"))?;
    match status {
        200 => {
            match (route, body["deleted"].as_bool()) {
                (Some(route), _) => println!(
                    "route {route}: entries retired in this data centre (every isolate there within {} s); to retire them everywhere, change its cache.generation and push the config",
                    body["effective_within_seconds"]
                ),
                (None, Some(true)) => println!(
                    "{}: entry removed in this data centre",
                    body["url"].as_str().unwrap_or("?")
                ),
                (None, _) => println!(
                    "{}: no entry in this data centre",
                    body["url"].as_str().unwrap_or("?")
                ),
            }
            Ok(Verdict::Accepted)
        }
        400 | 404 => {
            eprintln!("{}", body["detail"].as_str().unwrap_or("refused"));
            Ok(Verdict::Refused)
        }
        _ => Err(format!(
            "{endpoint} answered {status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        )),
    }
}
