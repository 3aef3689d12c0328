//! API keys: their format, their record in the `KEYS` namespace, and
//! verification.
//!
//! A key reads `pk_<id>_<secret>`: a 12-hex-digit id and 32 random bytes
//! in base64url. KV holds, under `key:<id>`, a record with the SHA-256 of
//! the whole key (never the key), the consumer's name, roles, scopes, an
//! optional rate plan, expiry and revocation. Verification looks the
//! record up by id (through the isolate cache), then compares hashes in
//! constant time. A malformed key costs no KV read at all.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiKeySettings, AuthFailure, AuthMethod, Identity, RatePlan};
use crate::platform::{Clock, KvNamespace, KvStore};
use crate::ttl_cache::LookupCache;

pub const KEY_PREFIX: &str = "pk_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;
const HASH_PREFIX: &str = "sha256:";

/// The record stored for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    /// The consumer this key belongs to.
    pub name: String,
    /// `sha256:` and the lower-case hex SHA-256 of the whole key.
    pub hash: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub rate: Option<RatePlan>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; the key stops working at this instant.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub revoked_at: Option<u64>,
    /// Set when the key was rotated: the id of its successor.
    #[serde(default)]
    pub rotated_to: Option<String>,
}

impl KeyRecord {
    /// A record for `key` (as made by [`generate`]).
    pub fn new(id: &str, key: &str, name: &str, created_at: u64) -> KeyRecord {
        KeyRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            hash: format!(
                "{HASH_PREFIX}{}",
                base16ct::lower::encode_string(&hash(key))
            ),
            roles: Vec::new(),
            scopes: Vec::new(),
            rate: None,
            created_at,
            expires_at: None,
            disabled: false,
            revoked_at: None,
            rotated_to: None,
        }
    }

    /// Whether `presented` (a whole key) hashes to this record's hash.
    /// Constant time in the hash comparison.
    pub fn matches(&self, presented: &str) -> bool {
        let Some(stored) = self
            .hash
            .strip_prefix(HASH_PREFIX)
            .and_then(|hex| base16ct::mixed::decode_vec(hex).ok())
        else {
            return false;
        };
        stored.ct_eq(&hash(presented)).into()
    }

    /// Whether the key works at `now` (Unix seconds).
    pub fn usable_at(&self, now: u64) -> bool {
        !self.disabled && self.expires_at.is_none_or(|expires| now < expires)
    }

    pub fn identity(&self) -> Identity {
        Identity {
            method: Some(AuthMethod::ApiKey),
            consumer: Some(self.name.clone()),
            key_id: Some(self.id.clone()),
            roles: self.roles.clone(),
            scopes: self.scopes.clone(),
            rate: self.rate,
            ..Identity::default()
        }
    }
}

/// SHA-256 of a whole key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The KV key of a record.
pub fn kv_key(id: &str) -> String {
    format!("key:{id}")
}

/// Whether `text` has the shape of an API key.
pub fn looks_like_key(text: &str) -> bool {
    key_id(text).is_some()
}

/// The id inside a well-formed key.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = (rest.get(..ID_LEN)?, rest.get(ID_LEN..)?);
    let secret = secret.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

/// A new key id and key from 38 random bytes (6 for the id, 32 for the
/// secret). The caller supplies the randomness.
pub fn generate(random: &[u8; 38]) -> (String, String) {
    use base64ct::Encoding;
    let id = base16ct::lower::encode_string(&random[..6]);
    let secret = base64ct::Base64UrlUnpadded::encode_string(&random[6..]);
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    (id, key)
}

/// Cached lookups: records found, and ids KV does not have (kept apart,
/// so made-up ids cannot evict real keys).
pub type KeyCache = RefCell<LookupCache<String, Rc<KeyRecord>>>;

/// Verify a presented key.
pub async fn verify<P: Clock + KvStore>(
    platform: &P,
    cache: &KeyCache,
    settings: &ApiKeySettings,
    presented: &str,
) -> Result<Identity, AuthFailure> {
    let Some(id) = key_id(presented) else {
        return Err(AuthFailure::Invalid("malformed API key".to_owned()));
    };
    let now = platform.now();
    let cached = cache.borrow_mut().get(&id.to_owned(), now);
    let record = match cached {
        Some(record) => record,
        None => {
            let text = platform
                .get_text(KvNamespace::Keys, &kv_key(id))
                .await
                .map_err(|e| AuthFailure::Unavailable(format!("API key lookup: {e}")))?;
            let record = match text.map(|t| serde_json::from_str::<KeyRecord>(&t)) {
                Some(Ok(record)) if record.id == id => Some(Rc::new(record)),
                Some(Ok(_)) => {
                    return Err(AuthFailure::Invalid(format!(
                        "the record of key {id} names another id"
                    )));
                }
                Some(Err(error)) => {
                    return Err(AuthFailure::Invalid(format!(
                        "the record of key {id} is unreadable: {error}"
                    )));
                }
                None => None,
            };
            let ttl = if record.is_some() {
                settings.cache_ttl
            } else {
                settings.negative_ttl
            };
            cache
                .borrow_mut()
                .insert(id.to_owned(), record.clone(), now.plus(ttl));
            record
        }
    };
    let Some(record) = record else {
        return Err(AuthFailure::Invalid(format!("unknown API key id {id}")));
    };
    if !record.matches(presented) {
        return Err(AuthFailure::Invalid(format!(
            "wrong secret for API key {id}"
        )));
    }
    if !record.usable_at(now.as_secs()) {
        return Err(AuthFailure::Invalid(format!(
            "API key {id} is revoked or expired"
        )));
    }
    Ok(record.identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_their_record() {
        let (id, key) = generate(&[7; 38]);
        assert_eq!(key_id(&key), Some(id.as_str()));
        let record = KeyRecord::new(&id, &key, "acme", 0);
        assert!(record.matches(&key));
        let mut other = key.clone();
        other.pop();
        other.push('x');
        assert!(!record.matches(&other));
    }

    #[test]
    fn malformed_keys_are_recognised_without_lookup() {
        for bad in [
            "",
            "pk_",
            "pk_0123456789ab",
            "pk_0123456789AB_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "sk_0123456789ab_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pk_0123456789ab_short",
        ] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
        assert!(key_id("pk_0123456789ab_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some());
    }

    #[test]
    fn expiry_and_revocation_stop_a_key() {
        let mut record = KeyRecord::new("0123456789ab", "k", "n", 0);
        assert!(record.usable_at(100));
        record.expires_at = Some(100);
        assert!(record.usable_at(99));
        assert!(!record.usable_at(100));
        record.expires_at = None;
        record.disabled = true;
        assert!(!record.usable_at(0));
    }
}
