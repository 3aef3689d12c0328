//! Conversions between the runtime's request and response objects and the
//! core's `http` types. Header values travel as byte strings (one char per
//! byte), as the Fetch standard defines them, so no byte is lost or
//! mangled; bodies are handed over as streams, never read.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::ReadableStream;

use crate::body::Body;

/// Text of a JavaScript exception, for logs.
pub fn js_error_text(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown JavaScript error".to_owned())
}

fn byte_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn string_bytes(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Copy JavaScript headers into a `HeaderMap`, skipping anything invalid.
fn header_map(headers: &web_sys::Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Ok(Some(entries)) = js_sys::try_iter(headers) else {
        return map;
    };
    for entry in entries.flatten() {
        let pair: js_sys::Array = entry.unchecked_into();
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&string_bytes(&value)),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn js_headers(map: &HeaderMap) -> Result<web_sys::Headers, String> {
    let headers = web_sys::Headers::new().map_err(|e| js_error_text(&e))?;
    for (name, value) in map {
        headers
            .append(name.as_str(), &byte_string(value.as_bytes()))
            .map_err(|e| js_error_text(&e))?;
    }
    Ok(headers)
}

/// The client's request as the core's type.
pub fn inbound_request(
    request: &web_sys::Request,
) -> Result<http::Request<Body<ReadableStream>>, String> {
    let uri: Uri = request
        .url()
        .parse()
        .map_err(|_| "the URL could not be parsed".to_owned())?;
    let method = Method::from_bytes(request.method().as_bytes())
        .map_err(|_| "the method is not a valid token".to_owned())?;
    let mut inbound = http::Request::new(match request.body() {
        Some(stream) => Body::Stream(stream),
        None => Body::Empty,
    });
    *inbound.method_mut() = method;
    *inbound.uri_mut() = uri;
    *inbound.headers_mut() = header_map(&request.headers());
    Ok(inbound)
}

/// The core's upstream request as a runtime request (redirects not followed).
pub fn outbound_request(
    request: http::Request<Body<ReadableStream>>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<web_sys::Request, String> {
    let (parts, body) = request.into_parts();
    let init = web_sys::RequestInit::new();
    init.set_method(parts.method.as_str());
    init.set_headers(&js_headers(&parts.headers)?.into());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(signal);
    let may_have_body = parts.method != Method::GET && parts.method != Method::HEAD;
    match body {
        Body::Stream(stream) if may_have_body => init.set_body(&stream),
        Body::Full(bytes) if may_have_body => init.set_body(&Uint8Array::from(&bytes[..])),
        _ => {}
    }
    web_sys::Request::new_with_str_and_init(&parts.uri.to_string(), &init)
        .map_err(|e| js_error_text(&e))
}

/// The upstream's response as the core's type; the body stays a stream.
pub fn upstream_response(
    response: web_sys::Response,
) -> Result<http::Response<Body<ReadableStream>>, String> {
    let status = StatusCode::from_u16(response.status())
        .map_err(|_| format!("invalid status {}", response.status()))?;
    let mut converted = http::Response::new(match response.body() {
        Some(stream) => Body::Stream(stream),
        None => Body::Empty,
    });
    *converted.status_mut() = status;
    *converted.headers_mut() = header_map(&response.headers());
    Ok(converted)
}

/// Statuses whose responses must not carry a body.
fn is_null_body_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 101 | 103 | 204 | 205 | 304)
}

/// The core's response as a runtime response.
pub fn client_response(
    response: http::Response<Body<ReadableStream>>,
) -> Result<web_sys::Response, String> {
    let (parts, body) = response.into_parts();
    let init = web_sys::ResponseInit::new();
    init.set_status(parts.status.as_u16());
    init.set_headers(&js_headers(&parts.headers)?.into());
    let body = if is_null_body_status(parts.status) {
        Body::Empty
    } else {
        body
    };
    let built = match body {
        Body::Empty => web_sys::Response::new_with_opt_readable_stream_and_init(None, &init),
        Body::Stream(stream) => {
            web_sys::Response::new_with_opt_readable_stream_and_init(Some(&stream), &init)
        }
        Body::Full(bytes) => {
            let mut owned: Vec<u8> = Bytes::into(bytes);
            web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut owned), &init)
        }
    };
    built.map_err(|e| js_error_text(&e))
}
