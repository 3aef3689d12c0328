//! `portico config validate` and `portico config push`.

use std::path::Path;

use super::Verdict;
use super::wrangler::{self, KvTarget};
use crate::config::{CONFIG_KEY, Config, audit};
use crate::platform::KvNamespace;

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// Print the verdict on `text`; `Some(config)` when it is valid.
fn check(file: &Path, text: &str) -> Option<Config> {
    match Config::from_json(text) {
        Ok(config) => {
            println!(
                "{}: valid ({} routes, {} services)",
                file.display(),
                config.routes.len(),
                config.services.len()
            );
            for warning in audit::audit(&config) {
                eprintln!("  warning: {}: {}", warning.path, warning.message);
            }
            Some(config)
        }
        Err(error) => {
            eprintln!("{}: invalid configuration", file.display());
            for issue in &error.issues {
                eprintln!("  {}: {}", issue.path, issue.reason);
            }
            None
        }
    }
}

pub(crate) fn validate(file: &Path) -> Result<Verdict, String> {
    let text = read(file)?;
    Ok(match check(file, &text) {
        Some(_) => Verdict::Accepted,
        None => Verdict::Refused,
    })
}

pub(crate) fn push(file: &Path, target: &KvTarget) -> Result<Verdict, String> {
    let text = read(file)?;
    if check(file, &text).is_none() {
        eprintln!("nothing was pushed");
        return Ok(Verdict::Refused);
    }
    wrangler::kv_put(KvNamespace::Config.binding(), CONFIG_KEY, &text, target)
        .map_err(|e| e.to_string())?;
    println!(
        "pushed to {} key '{CONFIG_KEY}' ({}); isolates pick it up within config_refresh_seconds",
        KvNamespace::Config.binding(),
        target.describe()
    );
    Ok(Verdict::Accepted)
}
