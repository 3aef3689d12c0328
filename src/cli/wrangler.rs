//! Running wrangler for the CLI: every KV read and write goes through it,
//! so `--local` hits the same state `wrangler dev` uses and `--remote`
//! works with the operator's own Cloudflare login.
//!
//! wrangler is found, in order: the `PORTICO_WRANGLER` environment variable
//! (a command line, split on spaces), this project's
//! `node_modules/wrangler`, or `npx wrangler`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::Args;

/// Which KV store a command talks to.
#[derive(Args, Clone, Debug, Default)]
pub struct KvTarget {
    /// Use the local state that `wrangler dev` reads (the default for reads).
    #[arg(long, conflicts_with = "remote")]
    pub local: bool,
    /// Use the deployed namespace on Cloudflare.
    #[arg(long)]
    pub remote: bool,
    /// Directory of local state (as given to `wrangler dev --persist-to`).
    #[arg(long, value_name = "DIR", conflicts_with = "remote")]
    pub persist_to: Option<PathBuf>,
    /// The wrangler configuration that declares the namespaces.
    #[arg(long, value_name = "FILE", default_value = "wrangler.toml")]
    pub wrangler_config: PathBuf,
    /// The wrangler environment (`[env.NAME]`) to use.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

impl KvTarget {
    pub fn describe(&self) -> &'static str {
        if self.remote { "remote" } else { "local" }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![if self.remote { "--remote" } else { "--local" }.to_owned()];
        if let Some(dir) = &self.persist_to {
            args.push("--persist-to".to_owned());
            args.push(dir.display().to_string());
        }
        args.push("--config".to_owned());
        args.push(self.wrangler_config.display().to_string());
        if let Some(env) = &self.env {
            args.push("--env".to_owned());
            args.push(env.clone());
        }
        args
    }
}

/// A failed wrangler run.
#[derive(Debug, thiserror::Error)]
pub enum WranglerError {
    #[error("could not run wrangler ({program}): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("wrangler failed:\n{0}")]
    Failed(String),
    #[error("could not write a temporary file: {0}")]
    TempFile(std::io::Error),
}

fn command_line() -> Vec<String> {
    if let Ok(line) = std::env::var("PORTICO_WRANGLER") {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if !words.is_empty() {
            return words;
        }
    }
    let local = Path::new("node_modules/wrangler/bin/wrangler.js");
    if local.is_file() {
        return vec!["node".to_owned(), local.display().to_string()];
    }
    vec!["npx".to_owned(), "--yes".to_owned(), "wrangler".to_owned()]
}

fn run(args: &[String]) -> Result<Output, WranglerError> {
    let line = command_line();
    let output = Command::new(&line[0])
        .args(&line[1..])
        .args(args)
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| WranglerError::Spawn {
            program: line.join(" "),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(WranglerError::Failed(text.trim().to_owned()))
    }
}

/// Write `value` under `key` in the namespace bound as `binding`.
pub fn kv_put(
    binding: &str,
    key: &str,
    value: &str,
    target: &KvTarget,
) -> Result<(), WranglerError> {
    kv_put_with_metadata(binding, key, value, None, target)
}

/// Write `value` under `key`, with KV metadata (shown by listings).
pub fn kv_put_with_metadata(
    binding: &str,
    key: &str,
    value: &str,
    metadata: Option<&str>,
    target: &KvTarget,
) -> Result<(), WranglerError> {
    // A file, not an argument: values can be larger than the OS allows for
    // one argument, and the exact bytes that were checked are what is sent.
    let safe_key: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = std::env::temp_dir().join(format!("portico-kv-{}-{safe_key}", std::process::id()));
    let written =
        std::fs::File::create(&path).and_then(|mut file| file.write_all(value.as_bytes()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&path);
        return Err(WranglerError::TempFile(error));
    }
    let mut args = vec![
        "kv".to_owned(),
        "key".to_owned(),
        "put".to_owned(),
        key.to_owned(),
        "--binding".to_owned(),
        binding.to_owned(),
        "--path".to_owned(),
        path.display().to_string(),
    ];
    if let Some(metadata) = metadata {
        args.push("--metadata".to_owned());
        args.push(metadata.to_owned());
    }
    args.extend(target.args());
    let result = run(&args).map(|_| ());
    let _ = std::fs::remove_file(&path);
    result
}

/// The value under `key`, or `None` if there is none.
pub fn kv_get(
    binding: &str,
    key: &str,
    target: &KvTarget,
) -> Result<Option<String>, WranglerError> {
    let mut args = vec![
        "kv".to_owned(),
        "key".to_owned(),
        "get".to_owned(),
        key.to_owned(),
        "--binding".to_owned(),
        binding.to_owned(),
        "--text".to_owned(),
    ];
    args.extend(target.args());
    let output = run(&args)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    // wrangler reports a missing key on stdout, with success.
    if text.trim_end() == "Value not found" {
        return Ok(None);
    }
    Ok(Some(text))
}

/// One entry of a KV listing.
#[derive(Debug, serde::Deserialize)]
pub struct ListedKey {
    pub name: String,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// Every key starting with `prefix`, with its metadata.
pub fn kv_list(
    binding: &str,
    prefix: &str,
    target: &KvTarget,
) -> Result<Vec<ListedKey>, WranglerError> {
    let mut args = vec![
        "kv".to_owned(),
        "key".to_owned(),
        "list".to_owned(),
        "--binding".to_owned(),
        binding.to_owned(),
        "--prefix".to_owned(),
        prefix.to_owned(),
    ];
    args.extend(target.args());
    let output = run(&args)?;
    let text = String::from_utf8_lossy(&output.stdout);
    // wrangler may print notices before the JSON array.
    let json = text.find('[').map_or("[]", |at| &text[at..]);
    serde_json::from_str(json)
        .map_err(|e| WranglerError::Failed(format!("unexpected listing from wrangler: {e}")))
}
