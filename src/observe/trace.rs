//! W3C Trace Context (`traceparent`, level 1): which trace a request
//! belongs to.
//!
//! A valid `traceparent` from the client is continued: its trace id and
//! flags are kept and the client's span becomes the gateway span's parent.
//! Anything else (absent, malformed, repeated, an all-zero id, version
//! `ff`) starts a new trace. The gateway always has a span of its own, and
//! the upstream and the client both receive
//! `traceparent: 00-<trace id>-<gateway span>-<flags>`. `tracestate` is
//! vendor data the gateway does not interpret: it travels untouched.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::platform::Randomness;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The trace of one request, as the gateway takes part in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The client's span, when the trace came from the client.
    pub parent_id: Option<[u8; 8]>,
    /// The gateway's own span.
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// Continue the client's trace, or start one.
    pub fn from_headers(headers: &HeaderMap, random: &impl Randomness) -> TraceContext {
        let mut span_id = [0u8; 8];
        fill_nonzero(&mut span_id, random);
        let mut values = headers.get_all(TRACEPARENT).iter();
        let continued = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok().and_then(parse),
            _ => None,
        };
        match continued {
            Some(parent) => TraceContext {
                trace_id: parent.trace_id,
                parent_id: Some(parent.parent_id),
                span_id,
                flags: parent.flags,
            },
            None => {
                let mut trace_id = [0u8; 16];
                fill_nonzero(&mut trace_id, random);
                TraceContext {
                    trace_id,
                    parent_id: None,
                    span_id,
                    flags: 0,
                }
            }
        }
    }

    /// Whether the trace is marked as sampled.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        base16ct::lower::encode_string(&self.trace_id)
    }

    /// The gateway's span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        base16ct::lower::encode_string(&self.span_id)
    }

    /// `traceparent` with the gateway's span as the parent of whatever
    /// comes next.
    pub fn traceparent(&self) -> HeaderValue {
        let mut text = [b'-'; 55];
        let (version, rest) = text.split_at_mut(2);
        write_hex(version, &[0]);
        let (trace_id, rest) = rest.split_at_mut(33);
        write_hex(trace_id.get_mut(1..).unwrap_or_default(), &self.trace_id);
        let (span_id, flags) = rest.split_at_mut(17);
        write_hex(span_id.get_mut(1..).unwrap_or_default(), &self.span_id);
        write_hex(flags.get_mut(1..).unwrap_or_default(), &[self.flags]);
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| {
            HeaderValue::from_static("00-00000000000000000000000000000000-0000000000000000-00")
        })
    }
}

/// Write `bytes` as lower-case hexadecimal into `out` (twice as long).
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        if let [high, low] = pair {
            *high = hex_digit(byte >> 4);
            *low = hex_digit(byte & 15);
        }
    }
}

/// The lower-case hexadecimal digit of `n` (below 16), as `traceparent`
/// writes them.
fn hex_digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// A random id that is not all zeros (which the standard reserves).
fn fill_nonzero(bytes: &mut [u8], random: &impl Randomness) {
    random.fill_random(bytes);
    if bytes.iter().all(|&b| b == 0)
        && let Some(last) = bytes.last_mut()
    {
        *last = 1;
    }
}

struct Parent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// Parse a `traceparent` value. Version 00 must be exactly 55 characters;
/// later versions may append fields after a `-`, which are ignored.
fn parse(value: &str) -> Option<Parent> {
    let bytes = value.trim_matches([' ', '\t']).as_bytes();
    let version = hex::<1>(bytes.get(0..2)?)?[0];
    if version == 0xff || (version == 0 && bytes.len() != 55) {
        return None;
    }
    if bytes.len() < 55 || (bytes.len() > 55 && bytes.get(55) != Some(&b'-')) {
        return None;
    }
    if [2, 35, 52].iter().any(|&at| bytes.get(at) != Some(&b'-')) {
        return None;
    }
    let trace_id = hex::<16>(bytes.get(3..35)?)?;
    let parent_id = hex::<8>(bytes.get(36..52)?)?;
    let flags = hex::<1>(bytes.get(53..55)?)?[0];
    if trace_id.iter().all(|&b| b == 0) || parent_id.iter().all(|&b| b == 0) {
        return None;
    }
    Some(Parent {
        trace_id,
        parent_id,
        flags,
    })
}

/// Exactly `N` bytes from `2N` lowercase hex digits.
fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let decoded = base16ct::lower::decode(text, &mut out).ok()?;
    (decoded.len() == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memory::MemoryPlatform;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn context(values: &[&str]) -> TraceContext {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(TRACEPARENT, value.parse().unwrap());
        }
        TraceContext::from_headers(&headers, &MemoryPlatform::new())
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let trace = context(&[VALID]);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            trace.parent_id.map(|p| base16ct::lower::encode_string(&p)),
            Some("00f067aa0ba902b7".to_owned())
        );
        assert!(trace.sampled());
        let sent = trace.traceparent();
        let sent = sent.to_str().unwrap();
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(sent.ends_with("-01"));
        assert_ne!(&sent[36..52], "00f067aa0ba902b7");
        assert_eq!(&sent[36..52], trace.span_id_hex());
    }

    #[test]
    fn invalid_or_repeated_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let trace = context(&[bad]);
            assert_ne!(
                trace.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
            assert_eq!(trace.parent_id, None, "{bad:?}");
        }
        let trace = context(&[VALID, VALID]);
        assert_eq!(trace.parent_id, None);
    }

    #[test]
    fn a_later_version_with_extra_fields_is_understood() {
        let trace = context(&["01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future"]);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!trace.sampled());
        assert!(trace.traceparent().to_str().unwrap().starts_with("00-"));
    }

    #[test]
    fn minted_traces_are_well_formed_and_distinct() {
        let platform = MemoryPlatform::new();
        let a = TraceContext::from_headers(&HeaderMap::new(), &platform);
        let b = TraceContext::from_headers(&HeaderMap::new(), &platform);
        assert_ne!(a.trace_id, b.trace_id);
        let text = a.traceparent();
        let text = text.to_str().unwrap();
        assert_eq!(text.len(), 55);
        assert!(parse(text).is_some(), "{text}");
    }
}
