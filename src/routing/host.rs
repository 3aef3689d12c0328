//! Host conditions: an exact name (`api.example.com`) or a leading
//! wildcard (`*.example.com`, any name that ends in `.example.com`).
//!
//! Hosts compare case-insensitively, without a port and without a trailing
//! dot. A request without a usable host matches only routes without host
//! conditions.

use std::fmt;

/// A host condition of a route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// Holds the suffix with its leading dot: `.example.com`.
    Wildcard(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("a host is a DNS name such as 'api.example.com' or '*.example.com', without a port")]
    BadName,
    #[error("'*' alone is not a host pattern; leave 'hosts' out to match any host")]
    BareWildcard,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, HostError> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        if lower == "*" {
            return Err(HostError::BareWildcard);
        }
        if let Some(suffix) = lower.strip_prefix("*.") {
            if !is_dns_name(suffix) {
                return Err(HostError::BadName);
            }
            return Ok(HostPattern::Wildcard(format!(".{suffix}")));
        }
        if !is_dns_name(&lower) {
            return Err(HostError::BadName);
        }
        Ok(HostPattern::Exact(lower))
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The host of a request as routing compares it: lower-case, no port, no
/// trailing dot. `authority` is `host[:port]`, IPv6 literals in brackets.
pub fn normalize_request_host(authority: &str) -> Option<String> {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if authority.starts_with('[') {
        let end = authority.find(']')?;
        &authority[..=end]
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_hosts_match_case_insensitively() {
        let exact = HostPattern::parse("API.Example.com").unwrap();
        assert!(exact.matches("api.example.com"));
        let wildcard = HostPattern::parse("*.example.com").unwrap();
        assert!(wildcard.matches("a.example.com"));
        assert!(wildcard.matches("a.b.example.com"));
        assert!(!wildcard.matches("example.com"));
        assert!(!wildcard.matches("badexample.com"));
    }

    #[test]
    fn bad_host_patterns_are_refused() {
        assert_eq!(HostPattern::parse("*"), Err(HostError::BareWildcard));
        assert_eq!(HostPattern::parse("a.com:8080"), Err(HostError::BadName));
        assert_eq!(HostPattern::parse("a..com"), Err(HostError::BadName));
        assert_eq!(HostPattern::parse("*.*.com"), Err(HostError::BadName));
    }

    #[test]
    fn request_hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(
            normalize_request_host("API.example.com.:443").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            normalize_request_host("[::1]:8787").as_deref(),
            Some("[::1]")
        );
        assert_eq!(normalize_request_host(""), None);
    }
}
