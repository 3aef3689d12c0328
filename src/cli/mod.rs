//! The `portico` command line, for the people who operate the gateway:
//! check and publish configuration, ask how a request would be routed,
//! manage API keys and see where they stand on their rate limits.
//!
//! Native only. It shares the gateway's own config checks and routing, so
//! what it accepts and explains is exactly what the Worker will do. KV is
//! reached through wrangler ([`wrangler`]), never directly.
//!
//! Exit codes: 0 success; 1 the input was checked and refused (an invalid
//! config, or a request no route serves); 2 the command could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cache_cmd;
mod config_cmd;
mod keys_cmd;
mod limits_cmd;
mod routes_cmd;
pub mod wrangler;

pub use routes_cmd::explain;
use wrangler::KvTarget;

#[derive(Parser, Debug)]
#[command(
    name = "portico",
    version,
    about = "Operate the Portico edge API gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check and publish the gateway configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect routing.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Manage API keys in the KEYS namespace.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Inspect rate limits on a running gateway.
    #[command(subcommand)]
    Limits(limits_cmd::LimitsCommand),
    /// Retire cached responses on a running gateway.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Check a configuration file; every problem is named by its JSON path.
    Validate {
        /// The configuration document (JSON).
        file: PathBuf,
        /// The wrangler configuration, checked for secrets defined as
        /// plain variables.
        #[arg(long, value_name = "FILE", default_value = "wrangler.toml")]
        wrangler_config: PathBuf,
    },
    /// Check a configuration file, then store it in the CONFIG namespace.
    Push {
        file: PathBuf,
        #[command(flatten)]
        target: KvTarget,
    },
}

#[derive(Subcommand, Debug)]
enum RoutesCommand {
    /// Show which route serves a request and what the gateway will send upstream.
    Explain {
        /// HTTP method, e.g. GET.
        method: String,
        /// Full URL (for host conditions) or just a path with optional query.
        url: String,
        /// Read the configuration from this file instead of KV.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        target: KvTarget,
    },
}

/// Outcome of a command that could run: success, or refused input.
pub(crate) enum Verdict {
    Accepted,
    Refused,
}

/// Run the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(ConfigCommand::Validate {
            file,
            wrangler_config,
        }) => config_cmd::validate(&file, &wrangler_config),
        Command::Config(ConfigCommand::Push { file, target }) => {
            if !target.local && !target.remote {
                Err(
                    "say where to push: --local (wrangler dev's state) or --remote (Cloudflare)"
                        .to_owned(),
                )
            } else {
                config_cmd::push(&file, &target)
            }
        }
        Command::Routes(RoutesCommand::Explain {
            method,
            url,
            config,
            target,
        }) => routes_cmd::run(&method, &url, config.as_deref(), &target),
        Command::Keys(command) => keys_cmd::run(command),
        Command::Limits(command) => limits_cmd::run(command),
        Command::Cache(command) => cache_cmd::run(command),
    };
    match result {
        Ok(Verdict::Accepted) => ExitCode::SUCCESS,
        Ok(Verdict::Refused) => ExitCode::from(1),
        Err(message) => {
            eprintln!("portico: {message}");
            ExitCode::from(2)
        }
    }
}
