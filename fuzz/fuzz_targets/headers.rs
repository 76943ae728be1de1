//! Endpoint header validation, one header and a whole set.
//!
//! The input is a list of headers: entries separated by 0xFF, each a name and a value
//! separated by 0xFE (neither byte occurs in UTF-8, so both stay free for the text). A
//! header that passes is one Herald can send as it is: a valid HTTP name (lowercased) and
//! value, never a reserved name. A registration carrying the set either refuses it naming
//! the headers, or keeps every header within the bounds on count, size and distinct names.
#![no_main]

use std::collections::{HashMap, HashSet};

use herald::domain::CustomHeader;
use herald::grpc::pb;
use herald::service::NewEndpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut headers = HashMap::new();
    for entry in input.split(|&b| b == 0xff) {
        let (name, value) = match entry.iter().position(|&b| b == 0xfe) {
            Some(at) => (&entry[..at], &entry[at + 1..]),
            None => (entry, &[][..]),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let value = String::from_utf8_lossy(value).into_owned();
        if let Ok(header) = CustomHeader::parse(&name, &value) {
            sendable(&header);
            assert_eq!(header.name, name.to_ascii_lowercase());
            assert_eq!(header.value, value);
        }
        headers.insert(name, value);
    }
    let registration = pb::RegisterEndpointRequest {
        url: "https://receiver.example/hook".into(),
        headers,
        ..Default::default()
    };
    match NewEndpoint::try_from(registration) {
        Ok(endpoint) => {
            let headers = endpoint.headers;
            assert!(headers.len() <= CustomHeader::MAX_COUNT);
            let size: usize = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
            assert!(size <= CustomHeader::MAX_TOTAL_SIZE);
            let names: HashSet<&str> = headers.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names.len(), headers.len(), "the same name twice");
            headers.iter().for_each(sendable);
        }
        Err(v) => {
            assert!(!v.is_empty());
            for f in v.iter() {
                assert!(f.field.starts_with("headers"), "{f:?}");
            }
        }
    }
});

/// The header goes on a request unchanged, and is none of the headers Herald sets.
fn sendable(header: &CustomHeader) {
    let name = http::HeaderName::from_bytes(header.name.as_bytes())
        .unwrap_or_else(|e| panic!("{:?} is not a header name: {e}", header.name));
    assert_eq!(name.as_str(), header.name);
    http::HeaderValue::from_str(&header.value)
        .unwrap_or_else(|e| panic!("{:?} is not a header value: {e}", header.value));
    assert!(!CustomHeader::is_reserved(&header.name), "{}", header.name);
}
