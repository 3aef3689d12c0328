//! Cache keys: which requests share a stored response.
//!
//! A key is an absolute URL under the request's own host (the Cache API
//! keys by URL, and entries then belong to that host's zone):
//! `https://HOST/__portico/cache/ROUTE/GENERATION.EPOCH/HASH` (the
//! generation from the config, retired everywhere by a push; the epoch of
//! this data centre, retired by a purge). The hash covers,
//! each length-prefixed so no two inputs run together: the host, the
//! normalised path, the query (decoded, filtered by the policy, sorted),
//! the configured vary headers' values, and, on a route with
//! authentication whose policy is not `shared`, the caller. Credentials
//! themselves never enter a key: the caller is named by key id or token
//! subject, and even that only inside the hash.
//!
//! GET and HEAD share keys: HEAD is answered from the GET entry.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{CachePolicy, QueryKey};
use crate::auth::{AuthMethod, Identity};

/// What a request contributes to its key.
pub struct KeyInput<'a> {
    pub route_id: &'a str,
    /// The route's purge epoch in this data centre.
    pub epoch: u64,
    /// The normalised host the client asked for.
    pub host: Option<&'a str>,
    /// The normalised request path.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The verified caller, on routes with authentication.
    pub identity: Option<&'a Identity>,
}

/// The cache key of a request under `policy`.
pub fn cache_key(policy: &CachePolicy, input: &KeyInput<'_>) -> String {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part(b"portico-cache-v1");
    part(input.host.unwrap_or("").as_bytes());
    part(input.path.as_bytes());
    part(canonical_query(&policy.query, input.query).as_bytes());
    for name in &policy.vary_headers {
        part(name.as_str().as_bytes());
        let values: Vec<&[u8]> = input
            .headers
            .get_all(name)
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        part(&values.join(&b","[..]));
    }
    match (policy.shared, input.identity) {
        (false, Some(identity)) => part(caller(identity).as_bytes()),
        _ => part(b""),
    }
    let digest = base16ct::lower::encode_string(&hasher.finalize());
    format!(
        "https://{}/__portico/cache/{}/{}.{}/{digest}",
        input.host.unwrap_or("gateway.invalid"),
        input.route_id,
        policy.generation,
        input.epoch
    )
}

/// The caller, named by how they authenticated, so an API key id and a
/// token subject can never collide.
fn caller(identity: &Identity) -> String {
    let method = identity.method.map_or("none", AuthMethod::as_str);
    let first = identity
        .key_id
        .as_deref()
        .or(identity.issuer.as_deref())
        .unwrap_or("");
    let second = identity
        .subject
        .as_deref()
        .or(identity.consumer.as_deref())
        .unwrap_or("");
    format!("{method}\n{}\n{first}\n{second}", first.len())
}

/// The query as the key sees it: parameters decoded, filtered, sorted by
/// name then value, and encoded again, so `?b=2&a=1` and `?a=1&b=2` and
/// `?a=%31&b=2` share an entry.
fn canonical_query(rule: &QueryKey, query: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| match rule {
            QueryKey::AllBut(ignored) => !ignored.iter().any(|i| i == name),
            QueryKey::Only(kept) => kept.iter().any(|k| k == name),
        })
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort();
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(shared: bool, query: QueryKey) -> CachePolicy {
        CachePolicy {
            ttl: Duration::from_secs(30),
            honor_origin: true,
            statuses: vec![200],
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            max_body_bytes: 1024,
            vary_headers: vec![http::HeaderName::from_static("accept-language")],
            query,
            shared,
            generation: 3,
        }
    }

    fn key(
        policy: &CachePolicy,
        query: Option<&str>,
        headers: &HeaderMap,
        who: Option<&Identity>,
    ) -> String {
        cache_key(
            policy,
            &KeyInput {
                route_id: "catalog",
                epoch: 0,
                host: Some("api.example.com"),
                path: "/items",
                query,
                headers,
                identity: who,
            },
        )
    }

    fn identity(key_id: &str) -> Identity {
        Identity {
            method: Some(AuthMethod::ApiKey),
            key_id: Some(key_id.to_owned()),
            consumer: Some("acme".to_owned()),
            ..Identity::default()
        }
    }

    #[test]
    fn the_key_is_a_url_under_the_host_with_route_and_generation() {
        let key = key(
            &policy(false, QueryKey::AllBut(vec![])),
            None,
            &HeaderMap::new(),
            None,
        );
        assert!(
            key.starts_with("https://api.example.com/__portico/cache/catalog/3.0/"),
            "{key}"
        );
        assert_eq!(key.rsplit('/').next().unwrap().len(), 64);
    }

    #[test]
    fn query_order_and_escapes_do_not_matter_but_values_do() {
        let p = policy(false, QueryKey::AllBut(vec!["utm_source".into()]));
        let h = HeaderMap::new();
        let a = key(&p, Some("b=2&a=1"), &h, None);
        assert_eq!(a, key(&p, Some("a=%31&b=2"), &h, None));
        assert_eq!(a, key(&p, Some("a=1&b=2&utm_source=mail"), &h, None));
        assert_ne!(a, key(&p, Some("a=1&b=3"), &h, None));
        let only = policy(false, QueryKey::Only(vec!["page".into()]));
        assert_eq!(
            key(&only, Some("page=2&x=1"), &h, None),
            key(&only, Some("x=9&page=2"), &h, None)
        );
    }

    #[test]
    fn vary_headers_are_in_the_key_and_other_headers_are_not() {
        let p = policy(false, QueryKey::AllBut(vec![]));
        let mut en = HeaderMap::new();
        en.insert("accept-language", "en".parse().unwrap());
        let mut de = en.clone();
        de.insert("accept-language", "de".parse().unwrap());
        assert_ne!(key(&p, None, &en, None), key(&p, None, &de, None));
        let mut poisoned = en.clone();
        poisoned.insert("x-forwarded-host", "evil.example".parse().unwrap());
        poisoned.insert("x-original-url", "/admin".parse().unwrap());
        assert_eq!(key(&p, None, &en, None), key(&p, None, &poisoned, None));
    }

    #[test]
    fn callers_get_their_own_entries_unless_the_policy_is_shared() {
        let private = policy(false, QueryKey::AllBut(vec![]));
        let h = HeaderMap::new();
        let (a, b) = (identity("aaaaaaaaaaaa"), identity("bbbbbbbbbbbb"));
        assert_ne!(
            key(&private, None, &h, Some(&a)),
            key(&private, None, &h, Some(&b))
        );
        let shared = policy(true, QueryKey::AllBut(vec![]));
        assert_eq!(
            key(&shared, None, &h, Some(&a)),
            key(&shared, None, &h, Some(&b))
        );
        let token = Identity {
            method: Some(AuthMethod::Jwt),
            subject: Some("aaaaaaaaaaaa".to_owned()),
            ..Identity::default()
        };
        assert_ne!(
            key(&private, None, &h, Some(&a)),
            key(&private, None, &h, Some(&token)),
            "a key id and a token subject with the same text are different callers"
        );
    }

    #[test]
    fn a_new_generation_is_a_new_key() {
        let mut p = policy(false, QueryKey::AllBut(vec![]));
        let before = key(&p, None, &HeaderMap::new(), None);
        p.generation = 4;
        assert_ne!(before, key(&p, None, &HeaderMap::new(), None));
    }
}
