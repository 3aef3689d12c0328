//! Any bytes through the XML reader: it never panics, what it accepts
//! maps to JSON no more than a few times the input's size, and that JSON
//! writes back as XML the reader accepts again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::transform::xml::{XmlOptions, to_json, to_xml};

fuzz_target!(|data: &[u8]| {
    let mut options = XmlOptions::default();
    options.max_depth = 32;
    options.always_array.insert("item".to_owned());
    if let Ok((root, value)) = to_json(data, &options) {
        let json = serde_json::to_vec(&value).expect("a JSON value serialises");
        assert!(json.len() <= 8 * data.len() + 16, "output out of bounds");
        let xml = to_xml(&root, &value, options.max_depth).expect("what was read can be written");
        to_json(&xml, &options).expect("what was written can be read");
    }
});
