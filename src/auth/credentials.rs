//! Finding the credentials a request carries, where the route says to
//! look: the API-key header, `Authorization: Bearer`, and (only where a
//! route opts in) a query parameter or, for a WebSocket upgrade, a
//! subprotocol (read in [`crate::http::upgrade`]).

use http::{HeaderMap, header};

use super::RouteAuth;
use super::api_key;

/// Credentials found on a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presented {
    pub api_key: Option<String>,
    /// A bearer token that is not an API key.
    pub bearer: Option<String>,
    /// The request carried credentials in a way that cannot be read
    /// unambiguously (two Authorization headers, a malformed one).
    pub malformed: bool,
}

impl Presented {
    pub fn is_empty(&self) -> bool {
        self.api_key.is_none() && self.bearer.is_none() && !self.malformed
    }
}

/// The credentials `auth` accepts, from `headers` and `query`.
pub fn extract(headers: &HeaderMap, query: Option<&str>, auth: &RouteAuth) -> Presented {
    let mut presented = Presented::default();
    let wants_bearer = !auth.jwt.is_empty() || !auth.introspection.is_empty();

    let authorizations: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let bearer = match authorizations.as_slice() {
        [] => None,
        [value] => match value.to_str().ok().and_then(bearer_token) {
            Some(token) => Some(token.to_owned()),
            None => {
                // Another scheme (Basic, say) is not ours to judge unless
                // we were asked to read bearer credentials.
                presented.malformed =
                    wants_bearer || auth.api_key.as_ref().is_some_and(|source| source.bearer);
                None
            }
        },
        _ => {
            presented.malformed = true;
            None
        }
    };

    if let Some(source) = &auth.api_key {
        let values: Vec<_> = headers.get_all(&source.header).iter().collect();
        match values.as_slice() {
            [] => {}
            [value] => match value.to_str() {
                Ok(text) if !text.trim().is_empty() => {
                    presented.api_key = Some(text.trim().to_owned())
                }
                _ => presented.malformed = true,
            },
            _ => presented.malformed = true,
        }
        if presented.api_key.is_none()
            && source.bearer
            && let Some(token) = &bearer
            && api_key::looks_like_key(token)
        {
            presented.api_key = Some(token.clone());
        }
        if presented.api_key.is_none()
            && let (Some(name), Some(query)) = (&source.query, query)
        {
            presented.api_key = query_value(query, name);
        }
    }
    if wants_bearer {
        presented.bearer =
            bearer.filter(|token| presented.api_key.as_deref() != Some(token.as_str()));
    }
    presented
}

/// Take `offered` (a credential a WebSocket client offered as a
/// subprotocol) as what it looks like, when nothing else was presented
/// the same way: an API key if the route takes keys and it has a key's
/// shape, else a bearer token if the route takes those.
pub fn add_offered(presented: &mut Presented, offered: &str, auth: &RouteAuth) {
    let wants_bearer = !auth.jwt.is_empty() || !auth.introspection.is_empty();
    if auth.api_key.is_some() && api_key::looks_like_key(offered) {
        if presented.api_key.is_none() {
            presented.api_key = Some(offered.to_owned());
        }
    } else if wants_bearer && presented.bearer.is_none() {
        presented.bearer = Some(offered.to_owned());
    }
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 2.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return None;
    }
    Some(token)
}

/// The decoded value of query parameter `name`, if it appears exactly once.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let mut found = pairs.into_iter().filter(|(key, _)| key == name);
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first.1)
}

/// `query` without parameter `name`; every other byte stays as sent.
pub fn remove_query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            let decoded: Vec<(String, String)> =
                serde_urlencoded::from_str(&format!("{key}=")).unwrap_or_default();
            decoded.first().map(|(k, _)| k.as_str()) != Some(name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_one_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }

    #[test]
    fn query_params_are_read_once_and_removed_exactly() {
        assert_eq!(
            query_value("a=1&api_key=k%2B1", "api_key").as_deref(),
            Some("k+1")
        );
        assert_eq!(query_value("api_key=1&api_key=2", "api_key"), None);
        assert_eq!(
            remove_query_param("a=%20&api_key=x&b", "api_key"),
            "a=%20&b"
        );
        assert_eq!(remove_query_param("api%5Fkey=x&b=1", "api_key"), "b=1");
    }
}
