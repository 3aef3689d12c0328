//! Phase "request id": every request carries an id, end to end.
//!
//! A well-formed id sent by the client (1 to 128 characters of letters,
//! digits and `-_.:+/=`) is kept, so traces join up across systems; anything
//! else is replaced by a fresh id from the platform. The id goes to the
//! upstream, back to the client, into every problem body and every log
//! line. It is never trusted for anything but correlation.

use http::{HeaderMap, HeaderName};

use crate::platform::Randomness;

const MAX_LEN: usize = 128;

/// The id for this request.
pub fn assign(headers: &HeaderMap, header: &HeaderName, ids: &impl Randomness) -> String {
    match headers.get(header).and_then(|v| v.to_str().ok()) {
        Some(id) if is_well_formed(id) && headers.get_all(header).iter().count() == 1 => {
            id.to_owned()
        }
        _ => ids.new_request_id(),
    }
}

/// Whether a client-sent id may be kept.
fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memory::MemoryPlatform;

    #[test]
    fn well_formed_ids_are_kept_and_others_replaced() {
        let platform = MemoryPlatform::new();
        let header = HeaderName::from_static("x-request-id");
        let mut headers = HeaderMap::new();
        headers.insert(&header, "abc-123".parse().unwrap());
        assert_eq!(assign(&headers, &header, &platform), "abc-123");

        for bad in ["", "has space", "<script>", &"x".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert(&header, bad.parse().unwrap());
            assert!(
                assign(&headers, &header, &platform).starts_with("req-"),
                "{bad:?}"
            );
        }
        assert!(assign(&HeaderMap::new(), &header, &platform).starts_with("req-"));
    }

    #[test]
    fn two_ids_from_the_client_are_replaced() {
        let platform = MemoryPlatform::new();
        let header = HeaderName::from_static("x-request-id");
        let mut headers = HeaderMap::new();
        headers.append(&header, "a".parse().unwrap());
        headers.append(&header, "b".parse().unwrap());
        assert!(assign(&headers, &header, &platform).starts_with("req-"));
    }
}
