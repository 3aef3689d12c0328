//! The XML <-> JSON mapping (docs/transformation.md), both ways, over a
//! table of documents; round trips; every refusal of hostile XML; and
//! many generated documents that must never panic nor blow up.

use portico::transform::xml::{XmlError, XmlOptions, to_json, to_xml};
use serde_json::{Value, json};

fn options() -> XmlOptions {
    XmlOptions {
        root: "root".to_owned(),
        ..XmlOptions::default()
    }
}

fn read(xml: &str) -> Result<Value, XmlError> {
    to_json(xml.as_bytes(), &options()).map(|(_, value)| value)
}

fn write(value: &Value) -> String {
    String::from_utf8(to_xml("root", value, 64).unwrap()).unwrap()
}

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// (what, XML, JSON): read gives the JSON; writing the JSON gives the XML
/// back (after the declaration), so each row is also a round trip.
const TABLE: &[(&str, &str, &str)] = &[
    ("text only", "<root>hello</root>", r#""hello""#),
    (
        "children",
        "<root><id>7</id><name>Ada</name></root>",
        r#"{"id":"7","name":"Ada"}"#,
    ),
    (
        "field order kept",
        "<root><z>1</z><a>2</a></root>",
        r#"{"z":"1","a":"2"}"#,
    ),
    (
        "attributes",
        r#"<root id="7" kind="user"/>"#,
        r#"{"@id":"7","@kind":"user"}"#,
    ),
    (
        "text beside attributes",
        r#"<root><price currency="EUR">12.50</price></root>"#,
        r##"{"price":{"@currency":"EUR","#text":"12.50"}}"##,
    ),
    (
        "repeated elements",
        "<root><item>a</item><item>b</item></root>",
        r#"{"item":["a","b"]}"#,
    ),
    (
        "empty element",
        "<root><note></note></root>",
        r#"{"note":""}"#,
    ),
    (
        "nested",
        "<root><a><b><c>deep</c></b></a></root>",
        r#"{"a":{"b":{"c":"deep"}}}"#,
    ),
    (
        "namespaces as prefixes",
        r#"<root xmlns:s="urn:s"><s:item s:id="1">x</s:item></root>"#,
        r##"{"@xmlns:s":"urn:s","s:item":{"@s:id":"1","#text":"x"}}"##,
    ),
    (
        "unicode",
        "<root><name>Zoë 東京 🚀</name></root>",
        r#"{"name":"Zoë 東京 🚀"}"#,
    ),
    (
        "escapes",
        "<root><q>a &lt;b&gt; &amp; &quot;c&quot;</q></root>",
        r#"{"q":"a <b> & \"c\""}"#,
    ),
    (
        "attribute escapes",
        r#"<root a="&lt;&amp;&quot;"/>"#,
        r#"{"@a":"<&\""}"#,
    ),
];

#[test]
fn the_table_reads_as_documented_and_writes_back() {
    for (what, xml, expected) in TABLE {
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(read(xml).unwrap(), expected, "reading: {what}");
        let written = write(&expected);
        let written = written.strip_prefix(DECL).unwrap();
        assert_eq!(
            read(written).unwrap(),
            expected,
            "round trip: {what}: {written}"
        );
    }
}

#[test]
fn writing_is_canonical() {
    assert_eq!(
        write(&json!({"@id": "7", "#text": "x"})),
        format!(r#"{DECL}<root id="7">x</root>"#)
    );
    assert_eq!(
        write(&json!({"item": ["a", "b"], "none": null, "n": 1.5, "ok": true})),
        format!("{DECL}<root><item>a</item><item>b</item><none/><n>1.5</n><ok>true</ok></root>")
    );
    assert_eq!(
        write(&json!({"grid": [[1, 2], [3]]})),
        format!(
            "{DECL}<root><grid><item>1</item><item>2</item></grid><grid><item>3</item></grid></root>"
        )
    );
    assert_eq!(
        write(&json!({"q": "<a & 'b'>"})),
        format!("{DECL}<root><q>&lt;a &amp; &apos;b&apos;&gt;</q></root>")
    );
}

#[test]
fn character_references_cdata_comments_and_declarations() {
    assert_eq!(
        read("<?xml version=\"1.0\"?><!-- c --><root><a>&#65;&#x42;</a><b><![CDATA[<raw & text>]]></b><?pi x?></root>")
            .unwrap(),
        json!({"a": "AB", "b": "<raw & text>"})
    );
}

#[test]
fn mixed_text_joins_the_text_beside_children() {
    assert_eq!(
        read("<root><p>Hello <b>world</b>!</p></root>").unwrap(),
        json!({"p": {"b": "world", "#text": "Hello !"}})
    );
    assert_eq!(
        read("<root>\n  <a>1</a>\n</root>").unwrap(),
        json!({"a": "1"}),
        "whitespace between elements is layout, not text"
    );
}

#[test]
fn always_array_keeps_single_items_in_arrays() {
    let mut options = options();
    options.always_array.insert("item".to_owned());
    let (_, value) = to_json(b"<root><item>a</item><other>b</other></root>", &options).unwrap();
    assert_eq!(value, json!({"item": ["a"], "other": "b"}));
    let (_, value) = to_json(b"<root><list><item>a</item></list></root>", &options).unwrap();
    assert_eq!(value, json!({"list": {"item": ["a"]}}));
}

#[test]
fn type_inference_only_when_asked() {
    let xml = b"<root><n>42</n><f>1.5</f><t>true</t><e/><z>007</z><s>x</s></root>";
    let (_, plain) = to_json(xml, &options()).unwrap();
    assert_eq!(
        plain,
        json!({"n": "42", "f": "1.5", "t": "true", "e": "", "z": "007", "s": "x"})
    );
    let mut inferring = options();
    inferring.infer_types = true;
    let (_, typed) = to_json(xml, &inferring).unwrap();
    assert_eq!(
        typed,
        json!({"n": 42, "f": 1.5, "t": true, "e": null, "z": "007", "s": "x"}),
        "a number that would not write back the same stays a string"
    );
}

#[test]
fn the_root_name_is_reported_and_dropped_from_the_document() {
    let (root, value) = to_json(b"<order id=\"1\"/>", &options()).unwrap();
    assert_eq!(root, "order");
    assert_eq!(value, json!({"@id": "1"}));
}

#[test]
fn arrays_and_scalars_at_the_root() {
    assert_eq!(
        write(&json!([{"a": 1}, {"a": 2}])),
        format!("{DECL}<root><item><a>1</a></item><item><a>2</a></item></root>")
    );
    assert_eq!(write(&json!("x")), format!("{DECL}<root>x</root>"));
    assert_eq!(write(&json!({})), format!("{DECL}<root/>"));
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"#;

#[test]
fn any_doctype_is_refused() {
    assert_eq!(read(BILLION_LAUGHS), Err(XmlError::Doctype));
    assert_eq!(read(XXE), Err(XmlError::Doctype));
    assert_eq!(read("<!DOCTYPE root><root/>"), Err(XmlError::Doctype));
    assert_eq!(
        read(r#"<!DOCTYPE root SYSTEM "http://evil.example/x.dtd"><root/>"#),
        Err(XmlError::Doctype)
    );
}

#[test]
fn undefined_entities_are_refused_not_expanded() {
    assert_eq!(
        read("<root>&xxe;</root>"),
        Err(XmlError::UndefinedEntity("xxe".to_owned()))
    );
    assert!(matches!(
        read(r#"<root a="&xxe;"/>"#),
        Err(XmlError::UndefinedEntity(_))
    ));
}

#[test]
fn nesting_over_the_cap_is_refused() {
    let mut options = options();
    options.max_depth = 8;
    let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    assert!(to_json(deep(8).as_bytes(), &options).is_ok());
    assert_eq!(
        to_json(deep(9).as_bytes(), &options),
        Err(XmlError::TooDeep(8))
    );
    // A million open tags costs one comparison each, never a million frames.
    assert_eq!(
        to_json("<a>".repeat(1_000_000).as_bytes(), &options),
        Err(XmlError::TooDeep(8))
    );
    assert_eq!(
        to_xml("root", &json!({"a": {"b": {"c": 1}}}), 3),
        Err(XmlError::TooDeep(3)),
        "writing is capped too"
    );
}

#[test]
fn attributes_over_the_cap_are_refused() {
    let mut options = options();
    options.max_attributes = 4;
    let element = |n: usize| {
        let attributes: String = (0..n).map(|i| format!(" a{i}=\"x\"")).collect();
        format!("<root{attributes}/>")
    };
    assert!(to_json(element(4).as_bytes(), &options).is_ok());
    assert_eq!(
        to_json(element(5).as_bytes(), &options),
        Err(XmlError::TooManyAttributes(4))
    );
}

#[test]
fn malformed_documents_are_refused() {
    for bad in [
        "",
        "just text",
        "<root>",
        "<root></other>",
        "<a/><b/>",
        "<root/>trailing",
        r#"<root a="1" a="2"/>"#,
        "<root>&#xD800;</root>",
        "<root>&amp</root>",
        "<1a/>",
        "<root 1a=\"x\"/>",
    ] {
        assert!(read(bad).is_err(), "{bad:?} was accepted");
    }
    assert_eq!(
        to_json(&[0x3c, 0x61, 0xff, 0x3e], &options()),
        Err(XmlError::NotUtf8)
    );
}

#[test]
fn json_that_cannot_be_xml_is_refused() {
    assert!(matches!(
        to_xml("root", &json!({"1st": "x"}), 64),
        Err(XmlError::BadName(_))
    ));
    assert!(matches!(
        to_xml("root", &json!({"a b": "x"}), 64),
        Err(XmlError::BadName(_))
    ));
    assert!(matches!(
        to_xml("root", &json!({"@a": {"b": 1}}), 64),
        Err(XmlError::BadAttribute(_))
    ));
}

/// A small deterministic generator (xorshift): the same documents every
/// run, so a failure can be reproduced from its seed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PIECES: &[&str] = &[
    "<a>",
    "</a>",
    "<b x=\"1\">",
    "</b>",
    "<c/>",
    "<s:d xmlns:s=\"u\">",
    "</s:d>",
    "text",
    " ",
    "&amp;",
    "&lt;",
    "&#65;",
    "&#x1F680;",
    "&bogus;",
    "<![CDATA[x<y]]>",
    "<!-- c -->",
    "<?p i?>",
    "<!DOCTYPE a>",
    "<",
    ">",
    "\"",
    "'",
    "=",
    "&",
    "é",
    "\u{0}",
    "<a a=\"&quot;\" b='2'>",
    "<item>1</item>",
    "<?xml version=\"1.0\"?>",
    "]]>",
    "<a",
    "/>",
];

/// A document of random well-formed structure: depth, names, attributes,
/// text and repetition all drawn from the generator.
fn structured(generator: &mut Generator, depth: usize, out: &mut String) {
    let names = ["a", "b", "item", "s:x", "long-name.v2"];
    let name = generator.pick(&names);
    out.push('<');
    out.push_str(name);
    for i in 0..generator.below(3) {
        out.push_str(&format!(" k{i}=\"v&amp;{i}\""));
    }
    out.push('>');
    for _ in 0..generator.below(4) {
        match generator.below(3) {
            0 if depth < 6 => structured(generator, depth + 1, out),
            1 => out.push_str("t&lt;ü"),
            _ => out.push(' '),
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[test]
fn generated_documents_never_panic_and_stay_bounded() {
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut options = options();
    options.max_depth = 16;
    options.always_array.insert("item".to_owned());
    for round in 0..20_000 {
        let mut xml = String::new();
        if round % 2 == 0 {
            for _ in 0..generator.below(40) {
                xml.push_str(generator.pick(PIECES));
            }
        } else {
            structured(&mut generator, 0, &mut xml);
        }
        if let Ok((root, value)) = to_json(xml.as_bytes(), &options) {
            let json = serde_json::to_string(&value).unwrap();
            // Linear in the input: JSON spells a control character in
            // six bytes, nothing takes more.
            assert!(
                json.len() <= 8 * xml.len() + 16,
                "round {round}: {} bytes of JSON from {} of XML: {xml}",
                json.len(),
                xml.len()
            );
            // What was read writes back, and reads back the same.
            let written = to_xml(&root, &value, 64).unwrap();
            let (again_root, again) = to_json(&written, &options).unwrap();
            assert_eq!(again_root, root, "round {round}: {xml}");
            assert_eq!(again, value, "round {round}: {xml}");
        }
    }
}

#[test]
fn the_documented_example_maps_both_ways() {
    // docs/transformation.md, "The XML <-> JSON mapping".
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<order id="7" xmlns:x="urn:x"><status>shipped</status><item sku="A1"><price>10</price></item><x:note>fragile &amp; heavy</x:note></order>"#;
    let json = json!({"@id": "7", "@xmlns:x": "urn:x", "status": "shipped", "item": [{"@sku": "A1", "price": "10"}], "x:note": "fragile & heavy"});
    let mut options = options();
    options.always_array.insert("item".to_owned());
    let (root, read) = to_json(xml.as_bytes(), &options).unwrap();
    assert_eq!((root.as_str(), &read), ("order", &json));
    let written = String::from_utf8(to_xml("order", &json, 64).unwrap()).unwrap();
    assert_eq!(written, xml.replace('\n', ""));
}
