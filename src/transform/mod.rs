//! Transformation: what a route changes in the requests it sends and the
//! responses it returns (docs/transformation.md).
//!
//! - [`template`]: values of header and query rules, parsed at load;
//! - [`headers`]: add, set, append, remove and rename headers and query
//!   parameters;
//! - [`json`]: reshaping JSON documents (allow, deny, rename, wrap, take);
//! - [`xml`]: the one XML <-> JSON mapping, safe against hostile XML.
//!
//! Everything here is pure: bodies arrive as bytes (read with a cap by
//! the phase, [`crate::phases::transform`]) and leave as bytes. Nothing
//! here may panic on any input, and no work is unbounded: the size cap
//! bounds the input, the XML caps its shape.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{self, HeaderValue};

pub mod headers;
pub mod json;
pub mod template;
pub mod xml;

use headers::{HeaderRule, QueryRule};
use json::JsonRule;
use xml::{XmlError, XmlOptions};

/// A body format the gateway reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The `Content-Type` of bodies the gateway writes in this format.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Format::Json => HeaderValue::from_static("application/json"),
            Format::Xml => HeaderValue::from_static("application/xml; charset=utf-8"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Xml => "XML",
        }
    }
}

/// What a route transforms, checked and parsed at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTransform {
    pub request: RequestRules,
    pub response: ResponseRules,
    /// The format the service speaks.
    pub origin: Format,
    /// Whether clients may send XML (`Content-Type`) and ask for it
    /// (`Accept`); otherwise clients speak JSON.
    pub negotiate: bool,
    pub xml: XmlOptions,
    /// The largest body read to be transformed.
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRules {
    pub headers: Vec<HeaderRule>,
    pub query: Vec<QueryRule>,
    /// `Some`: request bodies are read and reshaped (an empty list only
    /// checks that they are JSON).
    pub body: Option<Vec<JsonRule>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseRules {
    pub headers: Vec<HeaderRule>,
    pub body: Option<Vec<JsonRule>>,
}

/// The default cap on bodies read to be transformed.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl RouteTransform {
    /// Whether a request body in `client` format is read and rewritten.
    pub fn rewrites_request_body(&self, client: Format) -> bool {
        self.request.body.is_some() || client != self.origin
    }

    /// Whether a response body is read and rewritten for a client that
    /// wants `client` format.
    pub fn rewrites_response_body(&self, client: Format) -> bool {
        self.response.body.is_some() || client != self.origin
    }

    /// Whether any response may be read and rewritten (then the origin is
    /// asked for uncompressed bodies in its own format).
    pub fn may_rewrite_responses(&self) -> bool {
        self.response.body.is_some() || self.negotiate || self.origin != Format::Json
    }

    /// The format a client asking with these request headers receives.
    pub fn client_wants(&self, headers: &HeaderMap) -> Format {
        if self.negotiate && prefers_xml(headers) {
            Format::Xml
        } else {
            Format::Json
        }
    }
}

/// Why a body could not be transformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Xml(#[from] XmlError),
}

/// Read `body` (in `from` format), apply `rules`, and write it in `to`
/// format.
pub fn rewrite_body(
    body: &[u8],
    from: Format,
    rules: &[JsonRule],
    to: Format,
    xml_options: &XmlOptions,
) -> Result<Bytes, BodyError> {
    let document = match from {
        Format::Json => serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?,
        Format::Xml => xml::to_json(body, xml_options)?.1,
    };
    let document = json::apply(rules, document);
    Ok(match to {
        Format::Json => {
            Bytes::from(serde_json::to_vec(&document).map_err(|e| BodyError::Json(e.to_string()))?)
        }
        Format::Xml => Bytes::from(xml::to_xml(
            &xml_options.root,
            &document,
            xml_options.max_depth,
        )?),
    })
}

/// The format a `Content-Type` names, if JSON or XML; `Err` for another
/// media type; `Ok(None)` when there is none.
pub fn declared_format(headers: &HeaderMap) -> Result<Option<Format>, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let media = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_format(&media) {
        Some(format) => Ok(Some(format)),
        None => Err(media),
    }
}

fn media_format(media: &str) -> Option<Format> {
    let (kind, subtype) = media.split_once('/')?;
    if subtype == "json" && kind == "application" || subtype.ends_with("+json") {
        Some(Format::Json)
    } else if subtype == "xml" && (kind == "application" || kind == "text")
        || subtype.ends_with("+xml")
    {
        Some(Format::Xml)
    } else {
        None
    }
}

/// Whether `Accept` ranks XML above JSON (RFC 9110 section 12.5.1: the
/// most specific range that matches decides a type's weight; a tie goes
/// to JSON).
pub fn prefers_xml(headers: &HeaderMap) -> bool {
    let mut ranges = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for range in text.split(',') {
            let mut params = range.split(';');
            let media = params
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let weight = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            ranges.push((media, weight));
        }
    }
    let weight = |types: &[&str]| {
        types
            .iter()
            .filter_map(|media| {
                ranges
                    .iter()
                    .filter_map(|(range, weight)| {
                        specificity(range, media).map(|level| (level, *weight))
                    })
                    .max_by_key(|(level, _)| *level)
                    .map(|(_, weight)| weight)
            })
            .fold(0.0_f32, f32::max)
    };
    let xml = weight(&["application/xml", "text/xml"]);
    let json = weight(&["application/json"]);
    xml > json
}

/// How specifically `range` matches `media`: 3 exact, 2 `type/*`, 1 `*/*`.
fn specificity(range: &str, media: &str) -> Option<u8> {
    if range == media {
        return Some(3);
    }
    let (kind, _) = media.split_once('/')?;
    match range.split_once('/')? {
        ("*", "*") => Some(1),
        (range_kind, "*") if range_kind == kind => Some(2),
        _ => None,
    }
}

/// Fix a message head after its body was rewritten into `bytes` of
/// `format`: length and type set, a strong `ETag` weakened (the bytes
/// differ; the meaning is the origin's), digests of the old bytes gone.
pub fn rewritten_head(headers: &mut HeaderMap, format: Format, length: Option<usize>) {
    headers.insert(header::CONTENT_TYPE, format.content_type());
    match length {
        Some(length) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
    weaken_etag(headers);
    for name in ["content-md5", "digest", "content-digest", "repr-digest"] {
        headers.remove(name);
    }
    headers.remove(header::ACCEPT_RANGES);
}

/// Make a strong `ETag` weak (`W/"..."`): the bytes are the gateway's,
/// the meaning still the origin's.
pub fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(etag) = headers.get(header::ETAG)
        && !etag.as_bytes().starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        match HeaderValue::from_bytes(&weak) {
            Ok(weak) => {
                headers.insert(header::ETAG, weak);
            }
            Err(_) => {
                headers.remove(header::ETAG);
            }
        }
    }
}

/// Whether a body is compressed (any `Content-Encoding` but `identity`).
pub fn compressed(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
        .map(str::to_owned)
}
