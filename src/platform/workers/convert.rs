//! Conversions between the runtime's request and response objects and the
//! core's `http` types; bodies are handed over as streams, never read.
//!
//! Every call from wasm into JavaScript costs more than the copying it
//! does, so each conversion is one call into a small JavaScript helper
//! (below) that moves a whole head, headers included, as one string (its
//! text, and what it means, is `platform::head`).
//!
//! A message the runtime handed over keeps its runtime headers object (in
//! the `http` extensions, which the core passes along untouched). When the
//! core sends it on (the client's request upstream, the upstream's
//! response to the client), only the headers it changed cross back,
//! applied to a copy the runtime makes natively.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::ReadableStream;

use super::settle::{self, Settled};
use crate::body::Body;
use crate::platform::RequestBodyLimit;
use crate::platform::head::{parse_headers, push_changes, push_headers, push_uri, split_head};

#[wasm_bindgen(inline_js = r#"
function newHeaders(lines, from) {
  const headers = new Headers();
  for (let i = from; i + 1 < lines.length; i += 2) headers.append(lines[i], lines[i + 1]);
  return headers;
}
// forEach, not for-of: on workerd the iterator costs about twice as much.
function joinHeaders(head, headers) {
  headers.forEach((value, name) => {
    head += name + "\n" + value + "\n";
  });
  return head;
}
export function portico_request_head(request) {
  return joinHeaders(request.method + "\n" + request.url + "\n", request.headers);
}
export function portico_response_head(response) {
  return joinHeaders(response.status + "\n", response.headers);
}
function applyChanges(headers, lines, from) {
  for (let i = from; i + 1 < lines.length; ) {
    const op = lines[i];
    if (op === "d") {
      headers.delete(lines[i + 1]);
      i += 2;
    } else {
      if (op === "s") headers.set(lines[i + 1], lines[i + 2]);
      else headers.append(lines[i + 1], lines[i + 2]);
      i += 3;
    }
  }
  return headers;
}
// A streamed body that, once it passes `limit` bytes, aborts the upstream
// request (noting so in `state`) before a byte over the limit is sent.
// The abort comes first: a body stream that merely errors can end the
// upstream request as if the body were complete. The rest of the client's
// upload is then read and dropped, up to DRAIN_BYTES, so the client's
// connection stays usable and the client reads the 413 instead of a reset.
const DRAIN_BYTES = 1 << 20;
function limited(body, limit, state, upstream) {
  const reader = body.getReader();
  let seen = 0;
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      seen += value.byteLength;
      if (seen <= limit) {
        controller.enqueue(value);
        return;
      }
      state.over = true;
      state.drained = drain(reader);
      const over = new DOMException("request body over the route's limit", "BodyLimitError");
      upstream.abort(over);
      controller.error(over);
    },
    cancel(reason) {
      if (!state.over) return reader.cancel(reason);
    },
  });
}
async function drain(reader) {
  try {
    for (let left = DRAIN_BYTES; left > 0; ) {
      const { value, done } = await reader.read();
      if (done) return;
      left -= value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away: nothing left to drain.
  }
}
// Reports the response, or why there is none, through `settled(slot, ok,
// value)` (the promise bridge's callback) rather than through a promise of
// its own, which would cost the request one more reaction.
export function portico_fetch(head, arrived, body, timeoutMs, bodyLimit, slot, settled) {
  const lines = head.split("\n");
  // With the headers the request arrived with, the head lists only what
  // changed; else every header.
  const headers = arrived === undefined ? newHeaders(lines, 2) : applyChanges(new Headers(arrived), lines, 2);
  const controller = new AbortController();
  const init = { method: lines[0], headers, redirect: "manual", signal: controller.signal };
  const state = { over: false };
  if (body !== undefined) init.body = bodyLimit >= 0 && body instanceof ReadableStream ? limited(body, bodyLimit, state, controller) : body;
  // Until the response headers arrive; the body then streams on.
  const timer = setTimeout(() => controller.abort(new DOMException("no response in time", "TimeoutError")), timeoutMs);
  fetch(lines[1], init).then(
    (response) => {
      clearTimeout(timer);
      settled(slot, true, response);
    },
    (error) => {
      clearTimeout(timer);
      if (!state.over) {
        settled(slot, false, error);
        return;
      }
      state.drained.then(() => settled(slot, false, new DOMException("request body over the route's limit", "BodyLimitError")));
    },
  );
}
export function portico_response(head, arrived, body, webSocket) {
  const lines = head.split("\n");
  const headers = arrived === undefined ? newHeaders(lines, 1) : applyChanges(new Headers(arrived), lines, 1);
  const init = { status: Number(lines[0]), headers };
  // A WebSocket the upstream accepted: handing it to the client's
  // response joins the two; the runtime relays frames and close codes.
  if (webSocket !== undefined) init.webSocket = webSocket;
  return new Response(body === undefined ? null : body, init);
}
"#)]
extern "C" {
    fn portico_request_head(request: &web_sys::Request) -> String;
    fn portico_response_head(response: &web_sys::Response) -> String;
    #[wasm_bindgen(catch)]
    fn portico_fetch(
        head: &str,
        arrived: JsValue,
        body: JsValue,
        timeout_ms: u32,
        body_limit: f64,
        slot: u32,
        settled: &JsValue,
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(catch)]
    fn portico_response(
        head: &str,
        arrived: JsValue,
        body: JsValue,
        web_socket: JsValue,
    ) -> Result<web_sys::Response, JsValue>;
}

/// Text of a JavaScript exception, for logs.
pub fn js_error_text(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .or_else(|| {
            js_sys::Reflect::get(error, &JsValue::from_str("message"))
                .ok()
                .and_then(|message| message.as_string())
        })
        .unwrap_or_else(|| "unknown JavaScript error".to_owned())
}

fn error_name(error: &JsValue) -> Option<String> {
    js_sys::Reflect::get(error, &JsValue::from_str("name"))
        .ok()
        .and_then(|name| name.as_string())
}

/// Whether a rejected fetch was ended by its timeout.
pub fn is_timeout(error: &JsValue) -> bool {
    error_name(error).is_some_and(|name| name == "TimeoutError")
}

/// Whether a rejected fetch was abandoned because its streamed body
/// passed the request's [`RequestBodyLimit`].
pub fn is_body_limit(error: &JsValue) -> bool {
    error_name(error).is_some_and(|name| name == "BodyLimitError")
}

/// The WebSocket an upstream accepted (`Response.webSocket` of a 101),
/// kept in the response's extensions until it is handed to the client.
#[derive(Clone)]
struct Socket(JsValue);

// SAFETY: as for `Arrived`: the isolate is single-threaded.
unsafe impl Send for Socket {}
unsafe impl Sync for Socket {}

/// The runtime's headers a message arrived with, and their head text
/// ("name\nvalue\n" lines) as the core got them.
#[derive(Clone)]
struct Arrived {
    headers: web_sys::Headers,
    head: Bytes,
}

// SAFETY: wasm32 Workers isolates are single-threaded; the runtime object
// never crosses a thread. `http::Extensions` asks for Send + Sync only
// because the `http` crate serves threaded programs too.
unsafe impl Send for Arrived {}
unsafe impl Sync for Arrived {}

/// The head lines for `headers`: only the changes when the message came
/// from the runtime (with what it arrived with), else every header.
fn push_headers_or_changes(
    head: &mut String,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> JsValue {
    match extensions.get::<Arrived>() {
        Some(arrived) => {
            push_changes(head, &arrived.head, headers);
            arrived.headers.clone().into()
        }
        None => {
            push_headers(head, headers);
            JsValue::UNDEFINED
        }
    }
}

fn js_body(body: Body<ReadableStream>) -> JsValue {
    match body {
        Body::Empty => JsValue::UNDEFINED,
        Body::Stream(stream) => stream.into(),
        Body::Full(bytes) => Uint8Array::from(&bytes[..]).into(),
    }
}

/// The client's request as the core's type.
pub fn inbound_request(
    request: &web_sys::Request,
) -> Result<http::Request<Body<ReadableStream>>, String> {
    let ([method, url], head) = split_head(portico_request_head(request));
    let method =
        Method::from_bytes(&method).map_err(|_| "the method is not a valid token".to_owned())?;
    let uri = Uri::from_maybe_shared(url).map_err(|_| "the URL could not be parsed".to_owned())?;
    let mut inbound = http::Request::new(match request.body() {
        Some(stream) => Body::Stream(stream),
        None => Body::Empty,
    });
    *inbound.method_mut() = method;
    *inbound.uri_mut() = uri;
    *inbound.headers_mut() = parse_headers(&head);
    inbound.extensions_mut().insert(Arrived {
        headers: request.headers(),
        head,
    });
    Ok(inbound)
}

/// Send the core's upstream request (redirects not followed); the
/// response, or the error that ended it. The request is aborted if its
/// headers have not come back after `timeout_ms`, with a `TimeoutError`
/// (see [`is_timeout`]).
pub fn fetch(request: http::Request<Body<ReadableStream>>, timeout_ms: u32) -> Settled {
    let (parts, body) = request.into_parts();
    let mut head = String::with_capacity(128 + parts.headers.len() * 40);
    head.push_str(parts.method.as_str());
    head.push('\n');
    push_uri(&mut head, &parts.uri);
    head.push('\n');
    let arrived = push_headers_or_changes(&mut head, &parts.headers, &parts.extensions);
    // The forward phase already sends GET and HEAD without a body or a
    // length (`phases::forward`); Fetch would throw on one, so this stays
    // as the runtime's own rule.
    let may_have_body = parts.method != Method::GET && parts.method != Method::HEAD;
    let body = if may_have_body {
        js_body(body)
    } else {
        JsValue::UNDEFINED
    };
    // Negative: no limit (the JavaScript side counts only when asked).
    let body_limit = parts
        .extensions
        .get::<RequestBodyLimit>()
        .map_or(-1.0, |limit| limit.0 as f64);
    settle::settle_by(|slot, settled| {
        portico_fetch(&head, arrived, body, timeout_ms, body_limit, slot, settled)
    })
}

/// A runtime response (from the upstream or the cache) as the core's type;
/// the body stays a stream.
pub fn upstream_response(
    response: web_sys::Response,
) -> Result<http::Response<Body<ReadableStream>>, String> {
    let ([status], head) = split_head(portico_response_head(&response));
    let status = std::str::from_utf8(&status)
        .ok()
        .and_then(|status| status.parse::<u16>().ok())
        .and_then(|status| StatusCode::from_u16(status).ok())
        .ok_or_else(|| "the response has an invalid status".to_owned())?;
    let mut converted = http::Response::new(match response.body() {
        Some(stream) => Body::Stream(stream),
        None => Body::Empty,
    });
    *converted.status_mut() = status;
    *converted.headers_mut() = parse_headers(&head);
    converted.extensions_mut().insert(Arrived {
        headers: response.headers(),
        head,
    });
    if status == StatusCode::SWITCHING_PROTOCOLS
        && let Ok(socket) = js_sys::Reflect::get(&response, &JsValue::from_str("webSocket"))
        && !socket.is_null()
        && !socket.is_undefined()
    {
        converted.extensions_mut().insert(Socket(socket));
    }
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
    let mut head = String::with_capacity(8 + parts.headers.len() * 40);
    head.push_str(parts.status.as_str());
    head.push('\n');
    let arrived = push_headers_or_changes(&mut head, &parts.headers, &parts.extensions);
    let body = if is_null_body_status(parts.status) {
        JsValue::UNDEFINED
    } else {
        js_body(body)
    };
    let socket = parts
        .extensions
        .get::<Socket>()
        .map_or(JsValue::UNDEFINED, |socket| socket.0.clone());
    portico_response(&head, arrived, body, socket).map_err(|e| js_error_text(&e))
}
