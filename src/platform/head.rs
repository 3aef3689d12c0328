//! The head text the Workers adapter moves across the JavaScript
//! boundary, one string per message: "line\nline\n...", a line each for
//! the method or status, the URL, then every header name and value
//! (neither can hold a line feed). Header values travel as byte strings,
//! one char per byte, as the Fetch standard defines them, so no byte is
//! lost or mangled. Platform-neutral, tested natively; the calls into
//! JavaScript are in `platform::workers::convert`.
//!
//! A message the runtime handed over keeps the text it arrived with. When
//! it is sent on, only what the core changed crosses back: "d\nname" to
//! delete, "s\nname\nvalue" to set, "a\nname\nvalue" to append, applied to
//! a copy of the runtime's own headers.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// A header value's bytes from the runtime's text: one char per byte, and
/// `?` for a char no byte stands for.
fn value_bytes(text: &str) -> impl Iterator<Item = u8> + '_ {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
}

/// Whether a header value as the runtime gave it is, as the core read it,
/// `value`.
fn same_value(text: &str, value: &HeaderValue) -> bool {
    value_bytes(text).eq(value.as_bytes().iter().copied())
}

/// A head as one shared buffer: its first `N` lines, and the lines after
/// them (the headers). Nothing is copied; lines the head lacks are empty.
pub fn split_head<const N: usize>(head: String) -> ([Bytes; N], Bytes) {
    let head = Bytes::from(head.into_bytes());
    let mut at = 0;
    let first = std::array::from_fn(|_| {
        let rest = head.get(at..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |n| at + n);
        let line = head.slice(at..end);
        at = (end + 1).min(head.len());
        line
    });
    (first, head.slice(at..))
}

/// Headers from "name\nvalue\n" lines. Values point into the lines'
/// buffer where they are ASCII (nearly always), so no value is copied;
/// a header whose name or value is not valid is left out (and so removed
/// when the message is sent on, as if the core had dropped it).
pub fn parse_headers(lines: &Bytes) -> HeaderMap {
    let count = lines.iter().filter(|&&b| b == b'\n').count();
    let mut map = HeaderMap::with_capacity(count / 2);
    let mut at = 0;
    let mut next_line = || {
        let rest = lines.get(at..)?;
        let end = at + rest.iter().position(|&b| b == b'\n')?;
        let line = at..end;
        at = end + 1;
        Some(line)
    };
    while let (Some(name), Some(value)) = (next_line(), next_line()) {
        let name = lines
            .get(name)
            .and_then(|name| HeaderName::from_bytes(name).ok());
        let raw = lines.get(value.clone()).unwrap_or_default();
        let value = if raw.is_ascii() {
            HeaderValue::from_maybe_shared(lines.slice(value)).ok()
        } else {
            std::str::from_utf8(raw).ok().and_then(|text| {
                HeaderValue::from_bytes(&value_bytes(text).collect::<Vec<_>>()).ok()
            })
        };
        if let (Some(name), Some(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

/// Every (name, value) line of a head's header lines, in their order.
fn pairs(lines: &Bytes) -> impl Iterator<Item = (&str, &str)> {
    let text = std::str::from_utf8(lines).unwrap_or_default();
    let mut lines = text.split('\n');
    std::iter::from_fn(move || Some((lines.next()?, lines.next()?)))
}

fn push_value(out: &mut String, value: &HeaderValue) {
    out.extend(value.as_bytes().iter().map(|&b| char::from(b)));
}

/// Append the changes that turn the header lines a message `arrived`
/// with into `now`, as "d", "s" and "a" lines.
pub fn push_changes(out: &mut String, arrived: &Bytes, now: &HeaderMap) {
    let mut previous = None;
    for (name, _) in pairs(arrived) {
        // A name's values are consecutive lines (`Set-Cookie` has several).
        if previous == Some(name) {
            continue;
        }
        previous = Some(name);
        if !now.contains_key(name) {
            out.push_str("d\n");
            out.push_str(name);
            out.push('\n');
        }
    }
    for name in now.keys() {
        let values = now.get_all(name);
        let mut had = pairs(arrived)
            .filter(|(had, _)| *had == name.as_str())
            .map(|(_, value)| value);
        let mut has = values.iter();
        let unchanged = loop {
            match (has.next(), had.next()) {
                (None, None) => break true,
                (Some(value), Some(text)) if same_value(text, value) => {}
                _ => break false,
            }
        };
        if unchanged {
            continue;
        }
        for (index, value) in values.iter().enumerate() {
            out.push_str(if index == 0 { "s\n" } else { "a\n" });
            out.push_str(name.as_str());
            out.push('\n');
            push_value(out, value);
            out.push('\n');
        }
    }
}

/// Append "name\nvalue\n" lines for every header.
pub fn push_headers(out: &mut String, map: &HeaderMap) {
    for (name, value) in map {
        out.push_str(name.as_str());
        out.push('\n');
        push_value(out, value);
        out.push('\n');
    }
}

/// Write an absolute URI as `Uri`'s `Display` would, without the
/// formatting machinery.
pub fn push_uri(out: &mut String, uri: &Uri) {
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        out.push_str(authority.as_str());
    }
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(query);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Apply "d"/"s"/"a" lines to (name, value) pairs as the JavaScript
    /// helper applies them to a `Headers` copy (names are lowercase on
    /// both sides, as the runtime gives them).
    fn apply(arrived: &[(&str, &str)], changes: &str) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = arrived
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let lines: Vec<&str> = changes.split('\n').collect();
        let mut i = 0;
        while i + 1 < lines.len() {
            match lines[i] {
                "d" => {
                    headers.retain(|(n, _)| n != lines[i + 1]);
                    i += 2;
                }
                op => {
                    let (name, value) = (lines[i + 1].to_owned(), lines[i + 2].to_owned());
                    if op == "s" {
                        headers.retain(|(n, _)| *n != name);
                    }
                    headers.push((name, value));
                    i += 3;
                }
            }
        }
        headers.sort();
        headers
    }

    fn lines_of(pairs: &[(&str, &str)]) -> Bytes {
        let mut text = String::new();
        for (name, value) in pairs {
            text.push_str(name);
            text.push('\n');
            text.push_str(value);
            text.push('\n');
        }
        Bytes::from(text)
    }

    fn sorted(map: &HeaderMap) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = map
            .iter()
            .map(|(n, v)| {
                let value = v.as_bytes().iter().map(|&b| char::from(b)).collect();
                (n.as_str().to_owned(), value)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_head_splits_into_its_first_lines_and_its_header_lines() {
        let ([method, url], rest) =
            split_head::<2>("GET\nhttps://a.test/x?y=1\naccept\n*/*\n".to_owned());
        assert_eq!(&method[..], b"GET");
        assert_eq!(&url[..], b"https://a.test/x?y=1");
        assert_eq!(&rest[..], b"accept\n*/*\n");
    }

    #[test]
    fn a_short_or_empty_head_gives_empty_lines_and_no_headers() {
        let ([status], rest) = split_head::<1>(String::new());
        assert!(status.is_empty() && rest.is_empty());
        let ([method, url], rest) = split_head::<2>("GET".to_owned());
        assert_eq!(&method[..], b"GET");
        assert!(url.is_empty() && rest.is_empty());
        assert!(parse_headers(&rest).is_empty());
    }

    #[test]
    fn header_lines_become_a_map_with_repeated_names_kept_in_order() {
        let map = parse_headers(&lines_of(&[
            ("accept", "*/*"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]));
        assert_eq!(map.len(), 3);
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn a_value_above_ascii_is_read_one_byte_per_char() {
        // "é" as the runtime hands it over: one char, U+00E9, for the byte.
        let map = parse_headers(&lines_of(&[("x-name", "caf\u{e9}")]));
        assert_eq!(map["x-name"].as_bytes(), b"caf\xe9");
        // A char no byte stands for becomes '?', never a panic.
        let map = parse_headers(&lines_of(&[("x-name", "a\u{2603}b")]));
        assert_eq!(map["x-name"].as_bytes(), b"a?b");
    }

    #[test]
    fn invalid_names_and_values_and_a_dangling_line_are_left_out() {
        let map = parse_headers(&Bytes::from_static(
            b"bad name\nv\nok\n1\nx-ctl\na\x01b\ndangling\n",
        ));
        assert_eq!(sorted(&map), [("ok".to_owned(), "1".to_owned())]);
        assert!(parse_headers(&Bytes::from_static(b"no-newline")).is_empty());
    }

    #[test]
    fn no_change_crosses_back_for_an_untouched_message() {
        let arrived = lines_of(&[
            ("a", "1"),
            ("set-cookie", "x"),
            ("set-cookie", "y"),
            ("b", "caf\u{e9}"),
        ]);
        let mut out = String::new();
        push_changes(&mut out, &arrived, &parse_headers(&arrived));
        assert_eq!(out, "");
    }

    #[test]
    fn the_changes_turn_what_arrived_into_what_the_core_has() {
        let arrived = [
            ("a", "1"),
            ("gone", "x"),
            ("set-cookie", "c=1"),
            ("set-cookie", "c=2"),
            ("kept", "caf\u{e9}"),
        ];
        let mut now = parse_headers(&lines_of(&arrived));
        now.remove("gone");
        now.insert("a", HeaderValue::from_static("2"));
        now.append("set-cookie", HeaderValue::from_static("c=3"));
        now.append("new", HeaderValue::from_static("n1"));
        now.append("new", HeaderValue::from_bytes(b"n\xe92").unwrap());
        let mut out = String::new();
        push_changes(&mut out, &lines_of(&arrived), &now);
        assert!(
            !out.contains("kept"),
            "unchanged latin1 value not sent: {out}"
        );
        assert_eq!(apply(&arrived, &out), sorted(&now));
    }

    /// A header edit the core might make.
    #[derive(Debug, Clone)]
    enum Edit {
        Remove(&'static str),
        Insert(&'static str, String),
        Append(&'static str, String),
    }

    fn name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "content-type", "set-cookie", "x-y"])
    }

    /// Values as the runtime hands them over (one char per byte, so up to
    /// U+00FF), with the odd control char no header value may hold.
    fn value() -> impl Strategy<Value = String> {
        "[ -~\u{80}-\u{ff}\t\u{1}]{0,6}"
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            name().prop_map(Edit::Remove),
            (name(), "[ -~\u{80}-\u{ff}]{0,6}").prop_map(|(n, v)| Edit::Insert(n, v)),
            (name(), "[ -~\u{80}-\u{ff}]{0,6}").prop_map(|(n, v)| Edit::Append(n, v)),
        ]
    }

    fn latin1(value: &str) -> HeaderValue {
        let bytes: Vec<u8> = value_bytes(value).collect();
        HeaderValue::from_bytes(&bytes).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever arrived and whatever the core did to it, the change
        /// lines applied as the JavaScript helper applies them give exactly
        /// the core's headers; no input makes the parser panic.
        #[test]
        fn the_change_lines_always_rebuild_the_cores_headers(
            arrived in prop::collection::vec((name(), value()), 0..8),
            edits in prop::collection::vec(edit(), 0..6),
        ) {
            // The runtime lists names in order, each once, but for
            // `Set-Cookie`, whose values come one line each.
            let mut arrived = arrived;
            arrived.sort_by(|a, b| a.0.cmp(b.0));
            let mut seen = Vec::new();
            arrived.retain(|(n, _)| *n == "set-cookie" || if seen.contains(n) { false } else { seen.push(*n); true });
            let arrived: Vec<(&str, &str)> = arrived.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let lines = lines_of(&arrived);
            let mut now = parse_headers(&lines);
            for edit in edits {
                match edit {
                    Edit::Remove(n) => { now.remove(n); }
                    Edit::Insert(n, v) => { now.insert(n, latin1(&v)); }
                    Edit::Append(n, v) => { now.append(n, latin1(&v)); }
                }
            }
            let mut out = String::new();
            push_changes(&mut out, &lines, &now);
            prop_assert_eq!(apply(&arrived, &out), sorted(&now));
        }

        #[test]
        fn any_text_parses_without_a_panic(text in "(?s).{0,64}") {
            let ([_first, _second], rest) = split_head::<2>(text);
            let _ = parse_headers(&rest);
        }
    }

    #[test]
    fn a_fresh_message_lists_every_header_and_parses_back_the_same() {
        let mut map = HeaderMap::new();
        map.append("a", HeaderValue::from_static("1"));
        map.append("v", HeaderValue::from_bytes(b"x\xffy").unwrap());
        map.append("v", HeaderValue::from_static("2"));
        let mut out = String::new();
        push_headers(&mut out, &map);
        assert_eq!(sorted(&parse_headers(&Bytes::from(out))), sorted(&map));
    }

    #[test]
    fn a_uri_is_written_as_display_writes_it() {
        for uri in [
            "https://a.test/x/y?q=1&r=%20",
            "http://a.test:8080/",
            "http://user@a.test/p",
            "/relative?only",
        ] {
            let uri: Uri = uri.parse().unwrap();
            let mut out = String::new();
            push_uri(&mut out, &uri);
            assert_eq!(out, uri.to_string());
        }
    }
}
