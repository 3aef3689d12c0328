//! `portico config validate` and `portico config push`.

use std::path::Path;

use super::Verdict;
use super::wrangler::{self, KvTarget};
use crate::config::{CONFIG_KEY, Config, audit};
use crate::platform::KvNamespace;

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// Plain variables a wrangler configuration defines, each with the table
/// it is in: `[vars]` and every `[env.NAME.vars]`. Nothing when the file
/// is absent or is not TOML (a `wrangler.json` is not read).
fn plain_vars(wrangler_config: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(wrangler_config) else {
        return Vec::new();
    };
    let Ok(document) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut collect = |table: Option<&toml::Value>, at: String| {
        if let Some(vars) = table.and_then(toml::Value::as_table) {
            found.extend(vars.keys().map(|name| (at.clone(), name.clone())));
        }
    };
    collect(document.get("vars"), "[vars]".to_owned());
    if let Some(envs) = document.get("env").and_then(toml::Value::as_table) {
        for (env, table) in envs {
            collect(table.get("vars"), format!("[env.{env}.vars]"));
        }
    }
    found
}

/// Warnings for secrets the config names that `wrangler_config` defines
/// as plain variables: committed to the repository and shown in the
/// dashboard, where a secret would be neither.
fn secrets_in_vars(config: &Config, wrangler_config: &Path) -> Vec<String> {
    let vars = plain_vars(wrangler_config);
    let mut warnings = Vec::new();
    for (path, name) in audit::secret_names(config) {
        for (table, _) in vars.iter().filter(|(_, var)| *var == name) {
            warnings.push(format!(
                "{path}: '{name}' is a plain variable in {} ({table}), readable in the repository and the dashboard; \
                 store it with `wrangler secret put {name}` and remove it there",
                wrangler_config.display()
            ));
        }
    }
    warnings
}

/// Print the verdict on `text`; `Some(config)` when it is valid.
fn check(file: &Path, text: &str, wrangler_config: &Path) -> Option<Config> {
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
            for warning in secrets_in_vars(&config, wrangler_config) {
                eprintln!("  warning: {warning}");
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

pub(crate) fn validate(file: &Path, wrangler_config: &Path) -> Result<Verdict, String> {
    let text = read(file)?;
    Ok(match check(file, &text, wrangler_config) {
        Some(_) => Verdict::Accepted,
        None => Verdict::Refused,
    })
}

pub(crate) fn push(file: &Path, target: &KvTarget) -> Result<Verdict, String> {
    let text = read(file)?;
    if check(file, &text, &target.wrangler_config).is_none() {
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
