//! The identity services receive: headers they can trust, and a signature
//! that proves the request came through the gateway.
//!
//! Every request first loses any client-sent header that starts with the
//! identity prefix (default `X-Portico-`), whatever the route; then the
//! verified identity is written:
//!
//! | header | value |
//! |---|---|
//! | `X-Portico-Auth-Method` | `api_key`, `jwt` or `introspection` |
//! | `X-Portico-Consumer` | the API key's consumer, or the token's client id |
//! | `X-Portico-Key-Id` | the API key's id |
//! | `X-Portico-Subject` | the token's `sub` |
//! | `X-Portico-Issuer` | the token's issuer |
//! | `X-Portico-Roles` | roles, comma-separated |
//! | `X-Portico-Scopes` | scopes, space-separated |
//! | `X-Portico-Timestamp` | Unix seconds when the gateway signed |
//! | `X-Portico-Signature` | `v1=` and the hex HMAC-SHA256 of [`canonical`] |
//!
//! The signature is made with the Worker secret the config names, over
//! the method, the path and query the service receives, the timestamp and
//! every identity header, so none of them can be changed or replayed
//! elsewhere unnoticed. Values that are not printable ASCII are
//! percent-encoded.

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::Identity;

/// The identity header suffixes, in signing order.
pub const FIELDS: [&str; 7] = [
    "auth-method",
    "consumer",
    "key-id",
    "subject",
    "issuer",
    "roles",
    "scopes",
];

/// The identity header names for one prefix, made once when the config is
/// loaded rather than on every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaderNames {
    /// Lower-case, ending in `-`.
    prefix: String,
    /// In [`FIELDS`] order.
    fields: [HeaderName; 7],
    timestamp: HeaderName,
    signature: HeaderName,
}

impl IdentityHeaderNames {
    /// The names under `prefix` (lower-case), or `None` if they would not
    /// be valid header names.
    pub fn new(prefix: &str) -> Option<IdentityHeaderNames> {
        let name =
            |suffix: &str| HeaderName::from_bytes(format!("{prefix}{suffix}").as_bytes()).ok();
        let mut fields = Vec::with_capacity(FIELDS.len());
        for field in FIELDS {
            fields.push(name(field)?);
        }
        Some(IdentityHeaderNames {
            prefix: prefix.to_owned(),
            fields: fields.try_into().ok()?,
            timestamp: name("timestamp")?,
            signature: name("signature")?,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        IdentityHeaderNames {
            prefix: "x-portico-".to_owned(),
            fields: [
                HeaderName::from_static("x-portico-auth-method"),
                HeaderName::from_static("x-portico-consumer"),
                HeaderName::from_static("x-portico-key-id"),
                HeaderName::from_static("x-portico-subject"),
                HeaderName::from_static("x-portico-issuer"),
                HeaderName::from_static("x-portico-roles"),
                HeaderName::from_static("x-portico-scopes"),
            ],
            timestamp: HeaderName::from_static("x-portico-timestamp"),
            signature: HeaderName::from_static("x-portico-signature"),
        }
    }
}

/// Remove every header starting with `prefix` (lower-case).
pub fn strip_client_copies(headers: &mut HeaderMap, prefix: &str) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(prefix))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

/// The identity's header values, in [`FIELDS`] order (empty when absent).
pub fn values(identity: Option<&Identity>) -> [String; 7] {
    let Some(identity) = identity else {
        return Default::default();
    };
    let clean = |names: &[String], separator: &str| {
        names
            .iter()
            .map(|n| encode(n))
            .filter(|n| !n.is_empty() && !n.contains(',') && !n.contains(' '))
            .collect::<Vec<_>>()
            .join(separator)
    };
    let one = |value: &Option<String>| value.as_deref().map(encode).unwrap_or_default();
    [
        identity
            .method
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        one(&identity.consumer),
        one(&identity.key_id),
        one(&identity.subject),
        one(&identity.issuer),
        clean(&identity.roles, ","),
        clean(&identity.scopes, " "),
    ]
}

/// Write the identity headers (only the non-empty ones).
pub fn set_headers(headers: &mut HeaderMap, names: &IdentityHeaderNames, values: &[String; 7]) {
    for (name, value) in names.fields.iter().zip(values) {
        if value.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), value);
        }
    }
}

/// The text that is signed.
pub fn canonical(
    timestamp: u64,
    method: &str,
    path_and_query: &str,
    values: &[String; 7],
) -> String {
    let mut text = format!("portico-identity-v1\n{timestamp}\n{method}\n{path_and_query}");
    for value in values {
        text.push('\n');
        text.push_str(value);
    }
    text
}

/// `v1=` and the hex HMAC-SHA256 of `canonical` under `secret`.
pub fn signature(secret: &[u8], canonical: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    mac.update(canonical.as_bytes());
    format!(
        "v1={}",
        base16ct::lower::encode_string(&mac.finalize().into_bytes())
    )
}

/// Write the timestamp and signature headers.
pub fn sign(
    headers: &mut HeaderMap,
    names: &IdentityHeaderNames,
    secret: &[u8],
    timestamp: u64,
    method: &str,
    path_and_query: &str,
    values: &[String; 7],
) {
    let signed = signature(
        secret,
        &canonical(timestamp, method, path_and_query, values),
    );
    headers.insert(names.timestamp.clone(), HeaderValue::from(timestamp));
    if let Ok(value) = HeaderValue::from_str(&signed) {
        headers.insert(names.signature.clone(), value);
    }
}

/// Printable ASCII stays; every other byte is percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_values_are_percent_encoded() {
        assert_eq!(encode("zoë 100%"), "zo%C3%AB 100%25");
    }

    #[test]
    fn the_signature_changes_with_any_signed_part() {
        let values: [String; 7] = Default::default();
        let base = signature(b"secret", &canonical(1, "GET", "/a", &values));
        assert!(base.starts_with("v1=") && base.len() == 3 + 64);
        assert_ne!(
            base,
            signature(b"secret", &canonical(2, "GET", "/a", &values))
        );
        assert_ne!(
            base,
            signature(b"secret", &canonical(1, "POST", "/a", &values))
        );
        assert_ne!(
            base,
            signature(b"secret", &canonical(1, "GET", "/a?x", &values))
        );
        assert_ne!(
            base,
            signature(b"other", &canonical(1, "GET", "/a", &values))
        );
        let mut with_role = values.clone();
        with_role[5] = "admin".to_owned();
        assert_ne!(
            base,
            signature(b"secret", &canonical(1, "GET", "/a", &with_role))
        );
    }
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn the_default_names_are_those_of_the_default_prefix() {
        assert_eq!(
            IdentityHeaderNames::new("x-portico-"),
            Some(IdentityHeaderNames::default())
        );
        assert_eq!(IdentityHeaderNames::new("x portico-"), None);
    }
}
