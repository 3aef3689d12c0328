//! XML <-> JSON, one documented mapping both ways (docs/transformation.md).
//!
//! XML to JSON: the root element's content becomes the document (its name
//! is dropped; writing XML back takes it from the config). An element is
//! a string when it holds only text, an object otherwise: attributes as
//! `"@name"`, text beside attributes or children as `"#text"`, children
//! by name, a name that repeats as an array (and so are the names listed
//! in `always_array`, even once). Prefixes stay part of names (`soap:Body`)
//! and `xmlns` declarations are attributes like any other, so namespaces
//! survive a round trip. Values are strings unless type inference is on.
//!
//! JSON to XML is the inverse; `null` is an empty element, an array is the
//! element repeated, an array inside an array an element of `item`s.
//!
//! Hostile input is refused, never expanded: any DOCTYPE (so no entities,
//! external or not, and no billion laughs), entity references other than
//! the five predefined ones and character references, nesting deeper
//! than the cap and elements with more attributes than the cap. The size
//! cap is the caller's (it reads the body with one). Reading is one pass
//! with an explicit stack: no recursion on input, no unbounded CPU, and
//! nothing here may panic on any input.

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesRef, BytesStart, BytesText, Event};
use serde_json::{Map, Number, Value};

/// How XML is read and written for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlOptions {
    /// The root element written for JSON documents.
    pub root: String,
    /// Element names that are arrays in JSON even when they occur once.
    pub always_array: HashSet<String>,
    /// Read numbers and `true`/`false` as JSON numbers and booleans, and
    /// empty elements as `null`.
    pub infer_types: bool,
    /// Deepest element nesting accepted (the root is depth 1).
    pub max_depth: usize,
    /// Most attributes accepted on one element.
    pub max_attributes: usize,
}

impl Default for XmlOptions {
    fn default() -> Self {
        XmlOptions {
            root: "root".to_owned(),
            always_array: HashSet::new(),
            infer_types: false,
            max_depth: DEFAULT_MAX_DEPTH,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
        }
    }
}

pub const DEFAULT_MAX_DEPTH: usize = 64;
pub const DEFAULT_MAX_ATTRIBUTES: usize = 32;

/// The name of elements inside an array that is itself an array element.
const NESTED_ITEM: &str = "item";
const TEXT_KEY: &str = "#text";

/// Why a document could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML with a DOCTYPE is refused (no DTDs, no entity declarations)")]
    Doctype,
    #[error("XML nested deeper than {0} elements is refused")]
    TooDeep(usize),
    #[error("an XML element with more than {0} attributes is refused")]
    TooManyAttributes(usize),
    #[error("the entity '&{0};' is not defined (only the five predefined entities are)")]
    UndefinedEntity(String),
    #[error("XML must be UTF-8")]
    NotUtf8,
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    #[error("'{0}' cannot be an XML name")]
    BadName(String),
    #[error("the attribute '{0}' must be a string, number, boolean or null")]
    BadAttribute(String),
}

/// Read an XML document: the root element's name and its content as JSON.
pub fn to_json(xml: &[u8], options: &XmlOptions) -> Result<(String, Value), XmlError> {
    let text = std::str::from_utf8(xml).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;

    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                let frame = open(&start, &stack, root.is_some(), options)?;
                stack.push(frame);
            }
            Event::Empty(start) => {
                let frame = open(&start, &stack, root.is_some(), options)?;
                close(frame, &mut stack, &mut root, options);
            }
            Event::End(_) => match stack.pop() {
                Some(frame) => close(frame, &mut stack, &mut root, options),
                None => return Err(XmlError::Malformed("an end tag without a start".into())),
            },
            Event::Text(content) => {
                let content = content.xml10_content();
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&content),
                    None if content.trim_matches(is_xml_space).is_empty() => {}
                    None => return Err(outside_root()),
                }
            }
            Event::CData(content) => match stack.last_mut() {
                Some(frame) => frame.text.push_str(&content.xml10_content()),
                None => return Err(outside_root()),
            },
            Event::GeneralRef(reference) => {
                let resolved = resolve(&reference)?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push(resolved),
                    None => return Err(outside_root()),
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

fn outside_root() -> XmlError {
    XmlError::Malformed("content outside the root element".into())
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// An element being read.
struct Frame {
    name: String,
    fields: Map<String, Value>,
    text: String,
}

fn open(
    start: &BytesStart<'_>,
    stack: &[Frame],
    after_root: bool,
    options: &XmlOptions,
) -> Result<Frame, XmlError> {
    if after_root && stack.is_empty() {
        return Err(XmlError::Malformed("more than one root element".into()));
    }
    if stack.len() >= options.max_depth {
        return Err(XmlError::TooDeep(options.max_depth));
    }
    let name = start.name().0;
    if !is_xml_name(name) {
        return Err(XmlError::Malformed(format!(
            "'{name}' is not an element name"
        )));
    }
    let mut fields = Map::new();
    let mut attributes = start.attributes();
    attributes.with_checks(true);
    for (count, attribute) in attributes.enumerate() {
        if count >= options.max_attributes {
            return Err(XmlError::TooManyAttributes(options.max_attributes));
        }
        let attribute = attribute.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| match e {
                quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                    _,
                    name,
                )) => XmlError::UndefinedEntity(name),
                other => XmlError::Malformed(other.to_string()),
            })?;
        if !is_xml_name(attribute.key.0) {
            return Err(XmlError::Malformed(format!(
                "'{}' is not an attribute name",
                attribute.key.0
            )));
        }
        let mut key = String::with_capacity(attribute.key.0.len() + 1);
        key.push('@');
        key.push_str(attribute.key.0);
        fields.insert(key, Value::String(value.into_owned()));
    }
    Ok(Frame {
        name: name.to_owned(),
        fields,
        text: String::new(),
    })
}

/// Finish an element: attach it to its parent, or make it the root.
fn close(
    frame: Frame,
    stack: &mut [Frame],
    root: &mut Option<(String, Value)>,
    options: &XmlOptions,
) {
    let Frame {
        name,
        mut fields,
        text,
    } = frame;
    let value = if fields.is_empty() {
        scalar(text, options)
    } else {
        if !text.trim_matches(is_xml_space).is_empty() {
            fields.insert(TEXT_KEY.to_owned(), scalar(text, options));
        }
        Value::Object(fields)
    };
    let Some(parent) = stack.last_mut() else {
        *root = Some((name, value));
        return;
    };
    match parent.fields.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            let value = if options.always_array.contains(&name) {
                Value::Array(vec![value])
            } else {
                value
            };
            parent.fields.insert(name, value);
        }
    }
}

/// Text as a JSON value: a string, or with type inference a number,
/// boolean or `null` when it reads (and writes back) as exactly one.
fn scalar(text: String, options: &XmlOptions) -> Value {
    if !options.infer_types {
        return Value::String(text);
    }
    match text.as_str() {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match text.parse::<Number>() {
            Ok(number) if number.to_string() == text => Value::Number(number),
            _ => Value::String(text),
        },
    }
}

/// A character or predefined entity reference; any other entity is
/// undefined, since no DTD is ever read.
fn resolve(reference: &BytesRef<'_>) -> Result<char, XmlError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(XmlError::Malformed(format!(
                "'&{};' is not a character",
                reference.xml10_content()
            ))),
        };
    }
    let name = reference.xml10_content();
    match name.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(XmlError::UndefinedEntity(other.to_owned())),
    }
}

/// Write `value` as an XML document whose root element is `root`.
/// `max_depth` bounds the nesting written, as it does the nesting read.
pub fn to_xml(root: &str, value: &Value, max_depth: usize) -> Result<Vec<u8>, XmlError> {
    let mut writer = Writer::new(Vec::with_capacity(256));
    write(
        &mut writer,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    )?;
    match value {
        Value::Array(_) => {
            check_name(root)?;
            write(&mut writer, Event::Start(BytesStart::new(root)))?;
            element(&mut writer, NESTED_ITEM, value, 2, max_depth)?;
            write(&mut writer, Event::End(BytesEnd::new(root)))?;
        }
        _ => element(&mut writer, root, value, 1, max_depth)?,
    }
    Ok(writer.into_inner())
}

fn write(writer: &mut Writer<Vec<u8>>, event: Event<'_>) -> Result<(), XmlError> {
    // Writing into a Vec cannot fail; the error is mapped all the same.
    writer
        .write_event(event)
        .map_err(|e| XmlError::Malformed(e.to_string()))
}

/// Write `value` as the element `name` (repeated, for an array).
fn element(
    writer: &mut Writer<Vec<u8>>,
    name: &str,
    value: &Value,
    depth: usize,
    max_depth: usize,
) -> Result<(), XmlError> {
    if depth > max_depth {
        return Err(XmlError::TooDeep(max_depth));
    }
    check_name(name)?;
    match value {
        Value::Null => write(writer, Event::Empty(BytesStart::new(name))),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            write(writer, Event::Start(BytesStart::new(name)))?;
            let text = scalar_text(value).unwrap_or_default();
            if !text.is_empty() {
                write(writer, Event::Text(BytesText::new(&text)))?;
            }
            write(writer, Event::End(BytesEnd::new(name)))
        }
        Value::Array(items) => {
            for item in items {
                if let Value::Array(_) = item {
                    write(writer, Event::Start(BytesStart::new(name)))?;
                    element(writer, NESTED_ITEM, item, depth + 1, max_depth)?;
                    write(writer, Event::End(BytesEnd::new(name)))?;
                } else {
                    element(writer, name, item, depth, max_depth)?;
                }
            }
            Ok(())
        }
        Value::Object(fields) => {
            let mut start = BytesStart::new(name);
            let mut text = None;
            let mut children = false;
            for (key, field) in fields {
                if let Some(attribute) = key.strip_prefix('@') {
                    check_name(attribute)?;
                    let value = match field {
                        Value::Null => String::new(),
                        scalar => scalar_text(scalar)
                            .ok_or_else(|| XmlError::BadAttribute(attribute.to_owned()))?,
                    };
                    start.push_attribute((attribute, value.as_str()));
                } else if key == TEXT_KEY {
                    text = scalar_text(field);
                } else {
                    children = true;
                }
            }
            let text = text.filter(|t| !t.is_empty());
            if !children && text.is_none() {
                return write(writer, Event::Empty(start));
            }
            write(writer, Event::Start(start))?;
            if let Some(text) = text {
                write(writer, Event::Text(BytesText::new(&text)))?;
            }
            for (key, field) in fields {
                if !key.starts_with('@') && key != TEXT_KEY {
                    element(writer, key, field, depth + 1, max_depth)?;
                }
            }
            write(writer, Event::End(BytesEnd::new(name)))
        }
    }
}

/// The text of a scalar; `None` for objects and arrays.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn check_name(name: &str) -> Result<(), XmlError> {
    if is_xml_name(name) {
        Ok(())
    } else {
        Err(XmlError::BadName(name.chars().take(64).collect()))
    }
}

/// Whether `name` is an XML 1.0 name (prefixes, with `:`, included).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start = |c: char| {
        c.is_ascii_alphabetic()
            || c == '_'
            || c == ':'
            || matches!(c, '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
                | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
                | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
                | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
    };
    start(first) && chars.all(|c| {
        start(c)
            || c.is_ascii_digit()
            || matches!(c, '-' | '.' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(xml: &str) -> Value {
        to_json(xml.as_bytes(), &XmlOptions::default()).unwrap().1
    }

    #[test]
    fn a_leaf_is_its_text_and_attributes_are_at_names() {
        assert_eq!(
            read(r#"<a id="1"><b>x</b><c/></a>"#),
            json!({"@id": "1", "b": "x", "c": ""})
        );
    }

    #[test]
    fn writing_an_array_at_the_root_wraps_items() {
        let xml = to_xml("list", &json!([1, 2]), 8).unwrap();
        assert_eq!(
            String::from_utf8(xml).unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><list><item>1</item><item>2</item></list>"#
        );
    }

    #[test]
    fn names_follow_xml() {
        assert!(is_xml_name("soap:Envelope"));
        assert!(is_xml_name("_a-1.b"));
        assert!(is_xml_name("größe"));
        assert!(!is_xml_name("1a"));
        assert!(!is_xml_name("a b"));
        assert!(!is_xml_name(""));
        assert!(!is_xml_name("a<b"));
    }
}
