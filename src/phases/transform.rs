//! Phase "transform": a route's transformation rules
//! ([`crate::transform`]) applied to its requests and responses.
//!
//! - [`request`] (a request phase, after the cache lookup, before the
//!   upstream) reads and rewrites the request body when the route has
//!   request body rules or the client's format is not the origin's:
//!   413 over the cap, 415 for a body it cannot read (another media type
//!   under body rules, or compressed), 400 for a body that is not what it
//!   claims (invalid JSON, refused XML). XML sent on to an XML origin
//!   unchanged is read and checked all the same, then forwarded as it
//!   came.
//! - Header and query rules shape the upstream request itself, so they
//!   live where that request is built ([`super::forward`], through
//!   [`upstream_query`] and [`upstream_headers`]) and apply to background
//!   cache refreshes too.
//! - [`response`] (the first response phase, only on responses that came
//!   from the origin, directly or from the cache) applies response header
//!   rules and rewrites the body: origin format to the client's, with the
//!   response body rules. A response it cannot read is a 502.
//!
//! Bodies are read only when a body rule applies; everything else
//! streams. The cache stores the origin's response: transforms run on
//! the way out, so one entry serves JSON and XML clients alike.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;
use crate::platform::{Bodies, FetchError};
use crate::transform::headers::{apply_headers, apply_query};
use crate::transform::template::TemplateInput;
use crate::transform::{
    Format, RouteTransform, compressed, declared_format, rewrite_body, rewritten_head, weaken_etag,
    xml,
};

/// What templates of this request read.
fn template_input<S>(ctx: &RequestCtx<S>) -> Option<TemplateInput<'_>> {
    let routed = ctx.route.as_ref()?;
    Some(TemplateInput {
        pattern: &routed.route.spec.path,
        path: &routed.path,
        identity: ctx.identity.as_ref(),
        headers: &ctx.headers,
        query: ctx.uri.query(),
        client: &ctx.client,
        request_id: &ctx.request_id,
        method: &ctx.method,
    })
}

fn rules_of<S>(ctx: &RequestCtx<S>) -> Option<std::rc::Rc<RouteTransform>> {
    ctx.route.as_ref()?.route.transformation.clone()
}

/// The query the upstream receives, after the route's query rules.
pub fn upstream_query<S>(ctx: &RequestCtx<S>, query: Option<String>) -> Option<String> {
    let Some(rules) = rules_of(ctx).filter(|rules| !rules.request.query.is_empty()) else {
        return query;
    };
    let input = template_input(ctx)?;
    apply_query(&rules.request.query, query.as_deref(), &input)
}

/// Apply the route's request header rules to the upstream request's
/// headers; on a route that rewrites responses, ask the origin for whole,
/// uncompressed bodies in its own format.
pub fn upstream_headers<S>(ctx: &RequestCtx<S>, headers: &mut HeaderMap) {
    let Some(rules) = rules_of(ctx) else {
        return;
    };
    if let Some(input) = template_input(ctx) {
        apply_headers(&rules.request.headers, headers, &input);
    }
    if rules.may_rewrite_responses() {
        headers.insert(header::ACCEPT, rules.origin.content_type());
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        headers.remove(header::RANGE);
    }
}

/// Read and rewrite the request body, when the route says so.
pub async fn request<P: Bodies>(
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<Flow<P::Stream>, GatewayError> {
    let Some(rules) = rules_of(ctx) else {
        return Ok(Flow::Continue);
    };
    if ctx.method == Method::GET || ctx.method == Method::HEAD || ctx.body.is_empty() {
        return Ok(Flow::Continue);
    }
    let client = match declared_format(&ctx.headers) {
        Ok(None) | Ok(Some(Format::Json)) => Format::Json,
        Ok(Some(Format::Xml)) if rules.negotiate || rules.origin == Format::Xml => Format::Xml,
        Ok(Some(Format::Xml)) => {
            return Err(GatewayError::UnsupportedRequestBody(
                "this route takes JSON request bodies, not XML".to_owned(),
            ));
        }
        Err(_) if rules.request.body.is_none() => return Ok(Flow::Continue),
        Err(media) => {
            return Err(GatewayError::UnsupportedRequestBody(format!(
                "this route reads JSON request bodies, not {media}"
            )));
        }
    };
    let rewrite = rules.rewrites_request_body(client);
    // XML for an XML origin that needs no rewriting is still read and
    // checked: a hostile document must never reach a legacy parser.
    if !rewrite && client != Format::Xml {
        return Ok(Flow::Continue);
    }
    if let Some(coding) = compressed(&ctx.headers) {
        return Err(GatewayError::UnsupportedRequestBody(format!(
            "compressed bodies (Content-Encoding: {coding}) are not transformed; send it uncompressed"
        )));
    }
    let body = std::mem::take(&mut ctx.body);
    // A streamed body counts against the route's own limit too.
    let cap = ctx
        .streamed_body_limit
        .and_then(|limit| usize::try_from(limit).ok())
        .map_or(rules.max_body_bytes, |limit| {
            limit.min(rules.max_body_bytes)
        });
    let bytes = platform
        .read_body(body, cap)
        .await
        .map_err(|error| match error {
            FetchError::TooLarge(limit) => GatewayError::RequestBodyTooLarge(limit),
            other => GatewayError::MalformedRequest(format!(
                "the request body could not be read: {other}"
            )),
        })?;
    if bytes.is_empty() {
        ctx.body = Body::Empty;
        return Ok(Flow::Continue);
    }
    if !rewrite {
        xml::to_json(&bytes, &rules.xml)
            .map_err(|e| GatewayError::InvalidRequestBody(e.to_string()))?;
        ctx.body = Body::Full(bytes);
        return Ok(Flow::Continue);
    }
    let rewritten = rewrite_body(
        &bytes,
        client,
        rules.request.body.as_deref().unwrap_or_default(),
        rules.origin,
        &rules.xml,
    )
    .map_err(|e| GatewayError::InvalidRequestBody(e.to_string()))?;
    rewritten_head(&mut ctx.headers, rules.origin, Some(rewritten.len()));
    ctx.body = Body::Full(rewritten);
    Ok(Flow::Continue)
}

/// Apply the route's response rules to a response that came from the
/// origin (directly or through the cache).
pub async fn response<P: Bodies>(
    platform: &P,
    ctx: &RequestCtx<P::Stream>,
    mut response: http::Response<Body<P::Stream>>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let Some(rules) = rules_of(ctx) else {
        return Ok(response);
    };
    if ctx.preflight.is_some() {
        return Ok(response);
    }
    if let Some(input) = template_input(ctx) {
        apply_headers(&rules.response.headers, response.headers_mut(), &input);
    }
    if rules.negotiate {
        vary_on_accept(response.headers_mut());
    }
    let client = rules.client_wants(&ctx.headers);
    if !rules.rewrites_response_body(client) {
        return Ok(response);
    }
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        // What the client holds is the rewritten body: its validator is the
        // weakened one the full response carried.
        weaken_etag(response.headers_mut());
        return Ok(response);
    }
    if status.is_informational() || status == StatusCode::NO_CONTENT {
        return Ok(response);
    }
    if ctx.method == Method::HEAD {
        rewritten_head(response.headers_mut(), client, None);
        return Ok(response);
    }
    match declared_format(response.headers()) {
        Ok(None) => {}
        Ok(Some(format)) if format == rules.origin => {}
        // Another type on an error (an HTML error page, say) stays the
        // origin's own answer; on a success it breaks the route's contract.
        Ok(Some(_)) | Err(_) if !status.is_success() => return Ok(response),
        Ok(Some(format)) => {
            return Err(GatewayError::InvalidUpstreamBody(format!(
                "the service answered {} where {} was expected",
                format.as_str(),
                rules.origin.as_str()
            )));
        }
        Err(media) => {
            return Err(GatewayError::InvalidUpstreamBody(format!(
                "the service answered {media} where {} was expected",
                rules.origin.as_str()
            )));
        }
    }
    if let Some(coding) = compressed(response.headers()) {
        return Err(GatewayError::InvalidUpstreamBody(format!(
            "the body is compressed (Content-Encoding: {coding}); bodies that are transformed must come uncompressed"
        )));
    }
    let (mut parts, body) = response.into_parts();
    let bytes = platform
        .read_body(body, rules.max_body_bytes)
        .await
        .map_err(|error| match error {
            FetchError::TooLarge(limit) => {
                GatewayError::InvalidUpstreamBody(format!("the body is over {limit} bytes"))
            }
            other => GatewayError::UpstreamUnreachable(format!("reading the body: {other}")),
        })?;
    if bytes.is_empty() {
        return Ok(http::Response::from_parts(parts, Body::Empty));
    }
    let rewritten = rewrite_body(
        &bytes,
        rules.origin,
        rules.response.body.as_deref().unwrap_or_default(),
        client,
        &rules.xml,
    )
    .map_err(|e| GatewayError::InvalidUpstreamBody(e.to_string()))?;
    rewritten_head(&mut parts.headers, client, Some(rewritten.len()));
    Ok(http::Response::from_parts(parts, Body::Full(rewritten)))
}

/// Add `Accept` to `Vary`: the body's format depends on it.
fn vary_on_accept(headers: &mut HeaderMap) {
    let listed = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("accept")
        });
    if !listed {
        headers.append(header::VARY, HeaderValue::from_static("Accept"));
    }
}
