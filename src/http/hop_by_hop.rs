//! Hop-by-hop headers (RFC 9110 section 7.6.1): they describe one
//! connection, so a proxy removes them in both directions, together with
//! every header the `Connection` header lists.

use http::header::{self, HeaderMap, HeaderName};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is a hop-by-hop header that no proxy may forward.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Remove hop-by-hop headers and every header `Connection` lists.
///
/// One pass over the names present (a few, on the request path), rather
/// than a lookup of every name of the fixed set: `remove` by `&str`
/// parses and hashes the name each time.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name))
        .cloned()
        .collect();
    doomed.extend(connection_listed(headers));
    for name in doomed {
        headers.remove(name);
    }
}

/// The headers the `Connection` header names (hop-by-hop for this
/// message, whatever their names).
pub fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    if !headers.contains_key(header::CONNECTION) {
        return Vec::new();
    }
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        // Names of the fixed set (`keep-alive`, the usual token) go
        // anyway and need no name of their own here.
        .filter(|token| {
            !HOP_BY_HOP
                .iter()
                .any(|name| token.eq_ignore_ascii_case(name))
        })
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_listed_headers_go_with_the_fixed_set() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, x-secret".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("x-secret", "hop".parse().unwrap());
        headers.insert("transfer-encoding", "chunked".parse().unwrap());
        headers.insert("x-kept", "end-to-end".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn every_connection_option_names_a_header_to_remove_even_close() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "Close, X-Option".parse().unwrap());
        headers.insert("close", "a field named after the option".parse().unwrap());
        headers.insert("x-option", "listed".parse().unwrap());
        headers.insert("x-kept", "end-to-end".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }
}
