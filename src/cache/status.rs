//! What the cache did for a request: the `Cache-Status` response field
//! (RFC 9211, cache name `Portico`) and the access log's word for it.

use http::HeaderValue;

/// Why a request went to the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// No entry for the key.
    UriMiss,
    /// An entry that was no use (expired).
    Miss,
    /// A stale entry kept for stale-if-error; the origin was asked first.
    Stale,
    /// The request or the response is not cacheable here.
    Bypass,
}

/// The cache's part in one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from an entry (`ttl` negative when stale, served while it
    /// is refreshed in the background).
    Hit { ttl: i64 },
    /// Sent to the origin; `stored` when its response was stored, `detail`
    /// why it was not (or how it was answered).
    Forwarded {
        why: Forward,
        stored: bool,
        ttl: Option<i64>,
        detail: Option<&'static str>,
    },
    /// The origin failed and a stale entry answered instead.
    StaleIfError { ttl: i64 },
    /// Answered with another request's origin response (a concurrent miss
    /// for the same key).
    Coalesced,
}

impl CacheOutcome {
    /// A request that went to the origin, nothing stored yet.
    pub fn forwarded(why: Forward) -> CacheOutcome {
        CacheOutcome::Forwarded {
            why,
            stored: false,
            ttl: None,
            detail: None,
        }
    }

    /// A request the cache did not take part in.
    pub fn bypass(detail: &'static str) -> CacheOutcome {
        CacheOutcome::Forwarded {
            why: Forward::Bypass,
            stored: false,
            ttl: None,
            detail: Some(detail),
        }
    }

    /// The `Cache-Status` value.
    pub fn header(&self) -> HeaderValue {
        let text = match self {
            CacheOutcome::Hit { ttl } => format!("Portico; hit; ttl={ttl}"),
            CacheOutcome::StaleIfError { ttl } => {
                format!("Portico; hit; ttl={ttl}; detail=stale-if-error")
            }
            CacheOutcome::Coalesced => "Portico; fwd=miss; detail=coalesced".to_owned(),
            CacheOutcome::Forwarded {
                why,
                stored,
                ttl,
                detail,
            } => {
                let mut text = format!(
                    "Portico; fwd={}",
                    match why {
                        Forward::UriMiss => "uri-miss",
                        Forward::Miss => "miss",
                        Forward::Stale => "stale",
                        Forward::Bypass => "bypass",
                    }
                );
                if *stored {
                    text.push_str("; stored");
                }
                if let Some(ttl) = ttl {
                    text.push_str(&format!("; ttl={ttl}"));
                }
                if let Some(detail) = detail {
                    text.push_str("; detail=");
                    text.push_str(detail);
                }
                text
            }
        };
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Portico"))
    }

    /// The access log's word.
    pub fn log_word(&self) -> &'static str {
        match self {
            CacheOutcome::Hit { ttl } if *ttl > 0 => "hit",
            CacheOutcome::Hit { .. } => "stale",
            CacheOutcome::StaleIfError { .. } => "stale_if_error",
            CacheOutcome::Coalesced => "coalesced",
            CacheOutcome::Forwarded { why, stored, .. } => match (why, stored) {
                (Forward::Bypass, _) => "bypass",
                (_, true) => "miss_stored",
                (Forward::UriMiss | Forward::Miss | Forward::Stale, false) => "miss",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_speaks_rfc_9211() {
        assert_eq!(
            CacheOutcome::Hit { ttl: 12 }.header(),
            "Portico; hit; ttl=12"
        );
        let stored = CacheOutcome::Forwarded {
            why: Forward::UriMiss,
            stored: true,
            ttl: Some(30),
            detail: None,
        };
        assert_eq!(stored.header(), "Portico; fwd=uri-miss; stored; ttl=30");
        assert_eq!(
            CacheOutcome::bypass("method").header(),
            "Portico; fwd=bypass; detail=method"
        );
        assert_eq!(stored.log_word(), "miss_stored");
        assert_eq!(CacheOutcome::Hit { ttl: -3 }.log_word(), "stale");
    }
}
