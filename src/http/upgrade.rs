//! Requests that are more than one exchange: WebSocket upgrades
//! (RFC 6455), `Expect: 100-continue` (RFC 9110 section 10.1.1) and the
//! interim `1xx` responses that go with them.
//!
//! A proxy answers `Expect` itself and never passes it on: the client's
//! connection to the gateway and the gateway's to the service are two
//! hops, and the runtime already tells the client to go on. Forwarding it
//! would have the service send a `100 Continue` that is not a response.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// The subprotocol prefix under which a browser may offer a credential
/// (`Sec-WebSocket-Protocol: portico.bearer.<key or token>, chat`), on
/// routes that allow it: browsers cannot set headers on WebSocket
/// requests.
pub const CREDENTIAL_PROTOCOL_PREFIX: &str = "portico.bearer.";

const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");

/// Whether the request asks to become a WebSocket (`Upgrade: websocket`,
/// case-insensitive, among any other protocols listed). The runtime may
/// keep `Connection` to itself, so only `Upgrade` is read.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| {
            protocol
                .trim()
                .split('/')
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("websocket"))
        })
}

/// Whether the request asks for any protocol upgrade at all.
pub fn asks_for_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// A WebSocket opening handshake is a GET (RFC 6455 section 4.1).
pub fn is_upgrade_method(method: &Method) -> bool {
    *method == Method::GET
}

/// Mark an upstream request as a WebSocket upgrade again, after the
/// hop-by-hop headers (which include `Upgrade` and `Connection`) were
/// removed: the runtime opens the socket on seeing them.
pub fn set_websocket_upgrade(headers: &mut HeaderMap) {
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
}

/// Whether an upstream response with `status` is interim (`1xx`) where a
/// final one was due. A `101` is final for an upgrade the request asked
/// for; everything else below 200 is never a client's response.
pub fn is_unexpected_interim(status: StatusCode, upgrading: bool) -> bool {
    status.is_informational() && !(upgrading && status == StatusCode::SWITCHING_PROTOCOLS)
}

/// The credential offered as a subprotocol, if exactly one entry carries
/// one.
pub fn protocol_credential(headers: &HeaderMap) -> Option<String> {
    let mut found = offered_protocols(headers)
        .filter_map(|protocol| protocol.strip_prefix(CREDENTIAL_PROTOCOL_PREFIX))
        .filter(|credential| !credential.is_empty());
    let credential = found.next()?;
    found.next().is_none().then(|| credential.to_owned())
}

/// Remove credential entries from `Sec-WebSocket-Protocol`, keeping the
/// other protocols in their order; the header goes if none is left.
pub fn strip_protocol_credentials(headers: &mut HeaderMap) {
    if !offered_protocols(headers).any(|p| p.starts_with(CREDENTIAL_PROTOCOL_PREFIX)) {
        return;
    }
    let kept: Vec<String> = offered_protocols(headers)
        .filter(|protocol| !protocol.starts_with(CREDENTIAL_PROTOCOL_PREFIX))
        .map(str::to_owned)
        .collect();
    headers.remove(&SEC_WEBSOCKET_PROTOCOL);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join(", "))
    {
        headers.insert(&SEC_WEBSOCKET_PROTOCOL, value);
    }
}

fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(&SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn websocket_upgrades_are_told_from_other_upgrades() {
        assert!(is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(is_websocket_upgrade(&headers(&[("upgrade", "WebSocket")])));
        assert!(is_websocket_upgrade(&headers(&[(
            "upgrade",
            "h2c, websocket/13"
        )])));
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "h2c")])));
        assert!(!is_websocket_upgrade(&headers(&[])));
        assert!(asks_for_upgrade(&headers(&[("upgrade", "h2c")])));
    }

    #[test]
    fn only_an_upgrade_that_was_asked_for_makes_a_101_final() {
        assert!(is_unexpected_interim(StatusCode::CONTINUE, false));
        assert!(is_unexpected_interim(StatusCode::CONTINUE, true));
        assert!(is_unexpected_interim(
            StatusCode::SWITCHING_PROTOCOLS,
            false
        ));
        assert!(!is_unexpected_interim(
            StatusCode::SWITCHING_PROTOCOLS,
            true
        ));
        assert!(is_unexpected_interim(
            StatusCode::from_u16(103).unwrap(),
            false
        ));
        assert!(!is_unexpected_interim(StatusCode::OK, false));
    }

    #[test]
    fn a_credential_subprotocol_is_read_once_and_never_passed_on() {
        let mut map = headers(&[("sec-websocket-protocol", "portico.bearer.pk_1, chat")]);
        assert_eq!(protocol_credential(&map).as_deref(), Some("pk_1"));
        strip_protocol_credentials(&mut map);
        assert_eq!(map.get("sec-websocket-protocol").unwrap(), "chat");

        let mut only = headers(&[("sec-websocket-protocol", "portico.bearer.tok")]);
        strip_protocol_credentials(&mut only);
        assert!(!only.contains_key("sec-websocket-protocol"));

        let two = headers(&[
            ("sec-websocket-protocol", "portico.bearer.a"),
            ("sec-websocket-protocol", "portico.bearer.b"),
        ]);
        assert_eq!(
            protocol_credential(&two),
            None,
            "ambiguous: neither is read"
        );
        assert_eq!(
            protocol_credential(&headers(&[("sec-websocket-protocol", "chat")])),
            None
        );
    }
}
