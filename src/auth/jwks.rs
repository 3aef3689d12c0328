//! JSON Web Key Sets fetched from an identity provider, cached per isolate.
//!
//! A set is kept for the response's `Cache-Control: max-age`, clamped to
//! the issuer's floor and ceiling. A token naming an unknown `kid` causes
//! one refetch, at most once per `refetch_interval`, so a flood of random
//! kids cannot hammer the provider. When a refresh fails, the last set
//! stays in use until its ceiling has passed (stale-if-error); after that,
//! or with no set at all, verification fails closed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderValue, Method, header};
use serde_json::Value;

use super::AuthFailure;
use super::keys::VerifyingKey;
use crate::body::Body;
use crate::http::CacheControl;
use crate::observe::events::Event;
use crate::platform::{Clock, FetchOptions, HttpClient, LogSink, UnixMillis};

const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where and how to fetch an issuer's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksSettings {
    pub url: http::Uri,
    /// Floor of the cache lifetime (also used when no max-age is sent).
    pub min_ttl: Duration,
    /// Ceiling of the cache lifetime, and of stale use after a failed refresh.
    pub max_ttl: Duration,
    /// Least time between two fetches caused by unknown kids or failures.
    pub refetch_interval: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
struct Entry {
    keys: Rc<Vec<VerifyingKey>>,
    fetched_at: UnixMillis,
    fresh_until: UnixMillis,
    last_attempt: UnixMillis,
}

/// The key sets an isolate holds, by URL.
#[derive(Debug, Default)]
pub struct JwksCache {
    entries: RefCell<HashMap<String, Entry>>,
}

impl JwksCache {
    /// The current key set for `settings`, fetching it when due.
    pub async fn keys<P>(
        &self,
        platform: &P,
        settings: &JwksSettings,
    ) -> Result<Rc<Vec<VerifyingKey>>, AuthFailure>
    where
        P: Clock + HttpClient + LogSink,
    {
        let now = platform.now();
        let url = settings.url.to_string();
        let cached = self.entries.borrow().get(&url).cloned();
        match cached {
            Some(entry) if now < entry.fresh_until => Ok(entry.keys),
            Some(entry) if now.since(entry.last_attempt) < settings.refetch_interval => {
                // Refreshed (or failed to) moments ago: serve what we have
                // while it is within its ceiling.
                if now.since(entry.fetched_at) < settings.max_ttl {
                    Ok(entry.keys)
                } else {
                    Err(AuthFailure::Unavailable(format!(
                        "JWKS {url} expired and was refetched moments ago"
                    )))
                }
            }
            cached => self.refresh(platform, settings, cached).await,
        }
    }

    /// Fetch again because a token named a kid the set lacks. Returns
    /// `None` when a fetch happened too recently to try again.
    pub async fn refetch_for_unknown_kid<P>(
        &self,
        platform: &P,
        settings: &JwksSettings,
    ) -> Result<Option<Rc<Vec<VerifyingKey>>>, AuthFailure>
    where
        P: Clock + HttpClient + LogSink,
    {
        let now = platform.now();
        let cached = self
            .entries
            .borrow()
            .get(&settings.url.to_string())
            .cloned();
        if let Some(entry) = &cached
            && now.since(entry.last_attempt) < settings.refetch_interval
        {
            return Ok(None);
        }
        self.refresh(platform, settings, cached).await.map(Some)
    }

    async fn refresh<P>(
        &self,
        platform: &P,
        settings: &JwksSettings,
        previous: Option<Entry>,
    ) -> Result<Rc<Vec<VerifyingKey>>, AuthFailure>
    where
        P: Clock + HttpClient + LogSink,
    {
        let now = platform.now();
        let url = settings.url.to_string();
        if let Some(entry) = self.entries.borrow_mut().get_mut(&url) {
            // Claim the attempt so concurrent requests do not all fetch.
            entry.last_attempt = now;
        }
        match fetch(platform, settings).await {
            Ok((keys, max_age)) => {
                let ttl = max_age
                    .unwrap_or(settings.min_ttl)
                    .clamp(settings.min_ttl, settings.max_ttl);
                let keys = Rc::new(keys);
                platform.log(&Event::JwksFetched {
                    url: url.clone(),
                    keys: keys.len(),
                    cache_seconds: ttl.as_secs(),
                });
                self.entries.borrow_mut().insert(
                    url,
                    Entry {
                        keys: Rc::clone(&keys),
                        fetched_at: now,
                        fresh_until: now.plus(ttl),
                        last_attempt: now,
                    },
                );
                Ok(keys)
            }
            Err(error) => {
                let usable = previous
                    .as_ref()
                    .filter(|entry| now.since(entry.fetched_at) < settings.max_ttl);
                platform.log(&Event::JwksFetchFailed {
                    url: url.clone(),
                    error: error.clone(),
                    kept_previous: usable.is_some(),
                });
                match usable {
                    Some(entry) => {
                        let mut entries = self.entries.borrow_mut();
                        let stale = Entry {
                            fresh_until: now.plus(settings.refetch_interval),
                            last_attempt: now,
                            ..entry.clone()
                        };
                        let keys = Rc::clone(&stale.keys);
                        entries.insert(url, stale);
                        Ok(keys)
                    }
                    None => {
                        if let Some(entry) = self.entries.borrow_mut().get_mut(&url) {
                            entry.last_attempt = now;
                        } else {
                            self.entries.borrow_mut().insert(
                                url.clone(),
                                Entry {
                                    keys: Rc::new(Vec::new()),
                                    fetched_at: UnixMillis(0),
                                    fresh_until: UnixMillis(0),
                                    last_attempt: now,
                                },
                            );
                        }
                        Err(AuthFailure::Unavailable(format!("JWKS {url}: {error}")))
                    }
                }
            }
        }
    }
}

async fn fetch<P: HttpClient>(
    platform: &P,
    settings: &JwksSettings,
) -> Result<(Vec<VerifyingKey>, Option<Duration>), String> {
    let mut request = http::Request::new(Body::Empty);
    *request.method_mut() = Method::GET;
    *request.uri_mut() = settings.url.clone();
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let response = platform
        .fetch(
            request,
            FetchOptions {
                timeout: settings.timeout,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let max_age = CacheControl::from_headers(response.headers()).freshness();
    let body = platform
        .read_body(response.into_body(), MAX_JWKS_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let document: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = parse_jwks(&document)?;
    Ok((keys, max_age))
}

/// The usable signing keys of a JWKS document. Keys that are not for
/// signatures, of unknown types, or weak are skipped, not fatal.
fn parse_jwks(document: &Value) -> Result<Vec<VerifyingKey>, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "no 'keys' array".to_owned())?;
    Ok(keys
        .iter()
        .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
        .collect())
}
