//! What an isolate remembers between requests for authentication: API-key
//! records, verified tokens, introspection results and JWKS documents.
//!
//! Token and introspection results depend on the issuer configuration that
//! produced them, so they are dropped whenever a new config is loaded (told
//! apart by its generation number); key records and key sets do not depend
//! on it and survive.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::Identity;
use super::api_key::KeyCache;
use super::jwks::JwksCache;
use crate::ttl_cache::{LookupCache, TtlCache};

const KEY_CACHE_ENTRIES: usize = 10_000;
const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// Introspection results by (introspector name, token hash): active
/// tokens' identities, and inactive tokens kept apart (so a flood of made-up
/// tokens cannot evict active ones).
pub type IntrospectionCache = RefCell<LookupCache<(String, [u8; 32]), Rc<Identity>>>;

/// A verified token, remembered by its hash.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// The issuer's config name, so only routes accepting it reuse it.
    pub issuer: String,
    pub identity: Rc<Identity>,
}

/// Per-isolate authentication state.
#[derive(Debug)]
pub struct AuthState {
    pub api_keys: KeyCache,
    pub tokens: RefCell<TtlCache<[u8; 32], CachedToken>>,
    pub introspected: IntrospectionCache,
    pub jwks: JwksCache,
    config_seen: Cell<u64>,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            api_keys: RefCell::new(LookupCache::new(KEY_CACHE_ENTRIES)),
            tokens: RefCell::new(TtlCache::new(TOKEN_CACHE_ENTRIES)),
            introspected: RefCell::new(LookupCache::new(TOKEN_CACHE_ENTRIES)),
            jwks: JwksCache::default(),
            config_seen: Cell::new(0),
        }
    }
}

impl AuthState {
    /// Note the config serving this request (by its generation); results
    /// made under another config are forgotten.
    pub fn use_config(&self, generation: u64) {
        if self.config_seen.replace(generation) != generation {
            self.tokens.borrow_mut().clear();
            self.introspected.borrow_mut().clear();
        }
    }
}
