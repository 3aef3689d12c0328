//! The per-isolate configuration cache and its one rule: a refused document
//! never replaces the last good one.
//!
//! Each isolate keeps the config it last accepted and checks KV again once
//! its `config_refresh_seconds` have passed. Requests that arrive while a
//! check is under way keep using the current config, so a slow KV read
//! never stalls traffic. A document identical to the current one is not
//! parsed again. If the document is refused, KV fails, or the document
//! is gone (deleted by mistake, or lost by the store), the last good config
//! keeps serving and the reason is logged; only an isolate that never had
//! a good config answers 503 (not configured).

use std::cell::RefCell;
use std::rc::Rc;

use super::{CONFIG_KEY, Config};
use crate::observe::events::Event;
use crate::platform::{Clock, KvNamespace, KvStore, LogSink, UnixMillis};

/// Why no configuration is available.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unconfigured {
    #[error("no configuration is stored under the key 'config' of the CONFIG namespace")]
    Missing,
    #[error("the stored configuration was refused and there is no earlier one to fall back on")]
    Refused,
    #[error("the configuration could not be read")]
    Unreadable,
}

#[derive(Default)]
struct State {
    current: Option<Rc<Config>>,
    /// The exact text `current` came from, to skip re-parsing it.
    current_text: Option<Rc<str>>,
    checked_at: Option<UnixMillis>,
}

/// The configuration an isolate is serving.
#[derive(Default)]
pub struct ConfigSource {
    state: RefCell<State>,
}

impl ConfigSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// The config to serve this request with, refreshed from KV when due.
    pub async fn current<P>(&self, platform: &P) -> Result<Rc<Config>, Unconfigured>
    where
        P: Clock + KvStore + LogSink,
    {
        let now = platform.now();
        let previous = {
            let mut state = self.state.borrow_mut();
            if let (Some(config), Some(checked_at)) = (&state.current, state.checked_at)
                && now.since(checked_at) < config.settings.refresh
            {
                return Ok(Rc::clone(config));
            }
            // Claim the refresh: concurrent requests keep the current config.
            state.checked_at = Some(now);
            state.current.clone()
        };

        let read = platform.get_text(KvNamespace::Config, CONFIG_KEY).await;
        let text = match read {
            Ok(Some(text)) => text,
            Ok(None) => {
                platform.log(&Event::ConfigMissing {
                    kept_previous: previous.is_some(),
                });
                return previous.ok_or(Unconfigured::Missing);
            }
            Err(error) => {
                platform.log(&Event::ConfigReadFailed {
                    kept_previous: previous.is_some(),
                    error: error.to_string(),
                });
                return previous.ok_or(Unconfigured::Unreadable);
            }
        };

        if let Some(previous) = &previous {
            let state = self.state.borrow();
            if state.current_text.as_deref() == Some(text.as_str()) {
                return Ok(Rc::clone(previous));
            }
        }

        match Config::from_json(&text) {
            Ok(config) => {
                platform.log(&Event::ConfigLoaded {
                    routes: config.routes.len(),
                    services: config.services.len(),
                });
                let config = Rc::new(config);
                let mut state = self.state.borrow_mut();
                state.current = Some(Rc::clone(&config));
                state.current_text = Some(Rc::from(text));
                Ok(config)
            }
            Err(error) => {
                platform.log(&Event::ConfigRefused {
                    kept_previous: previous.is_some(),
                    errors: error.lines(),
                });
                previous.ok_or(Unconfigured::Refused)
            }
        }
    }
}
