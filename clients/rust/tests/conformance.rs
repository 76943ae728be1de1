//! The shared signature vectors (`clients/conformance/signatures.json`), computed outside
//! every implementation: `verify` must say what each vector says.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald_client::verify::{VerifyError, verify_at};

#[test]
fn verify_agrees_with_every_shared_vector() {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../../conformance/signatures.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 15, "only {} vectors", vectors.len());
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let headers: BTreeMap<String, String> =
            serde_json::from_value(v["headers"].clone()).unwrap();
        let body = BASE64.decode(v["body_base64"].as_str().unwrap()).unwrap();
        let tolerance = Duration::from_secs(v["tolerance_seconds"].as_u64().unwrap());
        let now = v["now"].as_i64().unwrap();
        let verdict = verify_at(
            v["secret"].as_str().unwrap(),
            &headers,
            &body,
            tolerance,
            now,
        );
        match (v["valid"].as_bool().unwrap(), v["error"].as_str()) {
            (true, None) => assert_eq!(verdict, Ok(()), "{name}"),
            (false, Some("stale")) => {
                assert!(
                    matches!(verdict, Err(VerifyError::Stale { .. })),
                    "{name}: {verdict:?}"
                )
            }
            (false, Some("no_match")) => assert_eq!(verdict, Err(VerifyError::NoMatch), "{name}"),
            (false, Some("malformed")) => {
                assert!(
                    matches!(verdict, Err(VerifyError::Malformed(_))),
                    "{name}: {verdict:?}"
                )
            }
            other => panic!("{name}: unknown expectation {other:?}"),
        }
    }
}
