//! Standard Webhooks signatures: signing for requests, verification for receivers.
//!
//! Pure functions over bytes, tested with the specification's known-answer vector. The
//! signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the decoded
//! `whsec_` secret; each signature is `v1,<base64 HMAC-SHA256>`, several separated by
//! spaces while a rotated-out secret is still valid.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Secret;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret.key()).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `v1,<base64>` signature.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        BASE64.encode(mac(secret, id, timestamp, body).finalize().into_bytes())
    )
}

/// The `webhook-signature` header value: one signature per secret, space separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a received webhook does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `skew_secs` is now minus the timestamp, saturated at the bounds of `i64`.
    #[error("webhook-timestamp is {skew_secs}s away from now, beyond the tolerance")]
    Stale { skew_secs: i64 },
    #[error("no v1 signature in webhook-signature matches")]
    NoMatch,
}

/// Receiver-side check of a webhook: some `v1` signature in `header` must match under
/// `secret`, and `timestamp` must be within `tolerance_secs` of `now_secs`.
///
/// # Errors
/// [`VerifyError::Stale`] for a timestamp out of tolerance, [`VerifyError::NoMatch`] when
/// no signature matches.
pub fn verify(
    secret: &Secret,
    header: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    // In i128, where the difference of any two timestamps fits: a hostile timestamp far
    // from now must not overflow, nor wrap round to look fresh.
    let skew = i128::from(now_secs) - i128::from(timestamp);
    if skew.abs() > i128::from(tolerance_secs) {
        let skew_secs = i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
        return Err(VerifyError::Stale { skew_secs });
    }
    let matches = header
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .any(|expected| {
            mac(secret, id, timestamp, body)
                .verify_slice(&expected)
                .is_ok()
        });
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known-answer vector of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::parse(SECRET).unwrap()
    }

    /// The vectors every client runs too (`clients/conformance`), computed outside Herald
    /// from the HMAC definition: each valid one is exactly what `sign` makes for its
    /// message (rotation pairs: one of the signatures), and `verify` says what each says.
    #[test]
    fn agrees_with_the_shared_conformance_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../clients/conformance/signatures.json"))
                .unwrap();
        let vectors = vectors["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 15);
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let secret = Secret::parse(v["secret"].as_str().unwrap()).unwrap();
            let header = |h: &str| v["headers"][h].as_str();
            let body = BASE64.decode(v["body_base64"].as_str().unwrap()).unwrap();
            let (Some(id), Some(timestamp), Some(signature)) = (
                header("webhook-id"),
                header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
                header("webhook-signature"),
            ) else {
                assert_eq!(v["error"], "malformed", "{name}");
                continue;
            };
            let now = v["now"].as_i64().unwrap();
            let tolerance = v["tolerance_seconds"].as_i64().unwrap();
            let verdict = verify(&secret, signature, id, timestamp, &body, now, tolerance);
            let expected = match v["error"].as_str() {
                None => Ok(()),
                Some("stale") => Err(VerifyError::Stale {
                    skew_secs: now - timestamp,
                }),
                Some("no_match") => Err(VerifyError::NoMatch),
                Some(other) => panic!("{name}: unexpected error {other}"),
            };
            assert_eq!(verdict, expected, "{name}");
            if v["valid"] == true {
                let mine = sign(&secret, id, timestamp, &body);
                assert!(signature.split(' ').any(|s| s == mine), "{name}: {mine}");
            }
        }
    }

    #[test]
    fn signs_the_specification_vector() {
        assert_eq!(sign(&secret(), ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_the_specification_vector() {
        assert_eq!(
            verify(&secret(), SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP, 300),
            Ok(())
        );
    }

    #[test]
    fn rejects_tampering_and_staleness() {
        let s = secret();
        assert_eq!(
            verify(
                &s,
                SIGNATURE,
                ID,
                TIMESTAMP,
                b"{\"test\": 1}",
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&s, SIGNATURE, "msg_other", TIMESTAMP, BODY, TIMESTAMP, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&s, SIGNATURE, ID, TIMESTAMP + 1, BODY, TIMESTAMP, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&s, "v2,abc v1,!!!", ID, TIMESTAMP, BODY, TIMESTAMP, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&s, SIGNATURE, ID, TIMESTAMP, BODY, TIMESTAMP + 301, 300),
            Err(VerifyError::Stale { skew_secs: 301 })
        );
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_stale_not_an_overflow() {
        let s = secret();
        let at =
            |timestamp, now, tolerance| verify(&s, SIGNATURE, ID, timestamp, BODY, now, tolerance);
        assert_eq!(
            at(i64::MIN, TIMESTAMP, 300),
            Err(VerifyError::Stale {
                skew_secs: i64::MAX
            })
        );
        assert_eq!(
            at(i64::MAX, -TIMESTAMP, 300),
            Err(VerifyError::Stale {
                skew_secs: i64::MIN
            })
        );
        // The full span wraps round to -1 in i64: it must not pass as fresh.
        assert_eq!(
            at(i64::MIN, i64::MAX, i64::MAX),
            Err(VerifyError::Stale {
                skew_secs: i64::MAX
            })
        );
    }

    #[test]
    fn header_carries_one_signature_per_secret_and_each_verifies() {
        let other = Secret::generate();
        let header = signature_header([&secret(), &other], ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            vec![SIGNATURE, sign(&other, ID, TIMESTAMP, BODY).as_str()]
        );
        assert!(verify(&other, &header, ID, TIMESTAMP, BODY, TIMESTAMP, 300).is_ok());
        assert!(verify(&secret(), &header, ID, TIMESTAMP, BODY, TIMESTAMP, 300).is_ok());
        assert_eq!(
            verify(
                &Secret::generate(),
                &header,
                ID,
                TIMESTAMP,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatch)
        );
    }
}
