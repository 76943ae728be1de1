//! Receiver-side verification of Standard Webhooks signatures, as Herald signs them.
//!
//! Pure functions over the request's headers and exact body bytes: no gRPC, no clock but
//! the one [`verify`] reads (tests and replays pass their own to [`verify_at`]). The
//! signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64 part
//! of the `whsec_` secret, and the `webhook-signature` header holds one `v1,<base64
//! HMAC-SHA256>` per secret in use, space separated (two while a rotated-out secret
//! still signs). A webhook verifies when its timestamp is within the tolerance of now and
//! any `v1` signature matches; every one is compared in constant time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header naming the message (the same on every attempt).
pub const ID_HEADER: &str = "webhook-id";
/// The header holding the Unix time of the attempt, in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header holding the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The tolerance the Standard Webhooks specification recommends: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a webhook does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is missing, or one is not what it must be (the timestamp not an
    /// integer). The request did not come from a Standard Webhooks sender.
    #[error("malformed webhook: {0}")]
    Malformed(&'static str),
    /// The timestamp is further from now than the tolerance: an old request replayed, or
    /// a clock far off. Positive skew: the timestamp is in the past.
    #[error("webhook-timestamp is {skew_secs}s away from now, beyond the tolerance")]
    Stale { skew_secs: i64 },
    /// No `v1` signature in the header matches this secret: the body, id or timestamp
    /// were changed, or the secret is not the endpoint's.
    #[error("no v1 signature in webhook-signature matches")]
    NoMatch,
    /// The secret given to verify is not a `whsec_` base64 secret.
    #[error("the secret is not a whsec_ base64 secret")]
    InvalidSecret,
}

/// Headers of a received request, looked up by lowercase name without regard to case.
///
/// Implemented for `http::HeaderMap` (hyper, axum, actix via `http`), string maps and
/// slices of pairs.
pub trait Headers {
    /// The value of the header `name` (given in lowercase), if present and text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

fn find_ignoring_case<'a, K, V>(
    pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    name: &str,
) -> Option<&'a str>
where
    K: AsRef<str> + ?Sized + 'a,
    V: AsRef<str> + ?Sized + 'a,
{
    pairs
        .into_iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

impl<K: AsRef<str>, V: AsRef<str>, S> Headers for HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        find_ignoring_case(self.iter(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&str> {
        find_ignoring_case(self.iter(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        find_ignoring_case(self.iter().map(|(k, v)| (k, v)), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<H: Headers + ?Sized> Headers for &H {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

/// Checks a received webhook against the endpoint's `secret` (`whsec_…`) and the
/// system clock: the timestamp must lie within `tolerance` of now, and some `v1`
/// signature must match the exact `body` bytes.
///
/// # Errors
/// [`VerifyError::Malformed`] for a missing header or a timestamp that is not an
/// integer, [`VerifyError::Stale`] for a timestamp out of tolerance,
/// [`VerifyError::NoMatch`] when no signature matches, [`VerifyError::InvalidSecret`]
/// for a secret that is not base64.
pub fn verify(
    secret: &str,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    // A clock before 1970 is not a state a receiver can verify anything in; reading it as
    // the epoch makes every webhook stale rather than panicking.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify_at(secret, headers, body, tolerance, now)
}

/// [`verify`] with the receiver's clock given as Unix seconds.
///
/// # Errors
/// As [`verify`].
pub fn verify_at(
    secret: &str,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    tolerance: Duration,
    now_unix_secs: i64,
) -> Result<(), VerifyError> {
    let id = headers
        .header(ID_HEADER)
        .ok_or(VerifyError::Malformed("webhook-id is missing"))?;
    let timestamp = headers
        .header(TIMESTAMP_HEADER)
        .ok_or(VerifyError::Malformed("webhook-timestamp is missing"))?;
    let signatures = headers
        .header(SIGNATURE_HEADER)
        .ok_or(VerifyError::Malformed("webhook-signature is missing"))?;
    let seconds = parse_timestamp(timestamp)?;
    let key = decode_secret(secret)?;

    let skew_secs = now_unix_secs.saturating_sub(seconds);
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if skew_secs.saturating_abs() > tolerance_secs {
        return Err(VerifyError::Stale { skew_secs });
    }

    let expected = sign(&key, id, timestamp, body);
    // Every signature is compared, matching or not, so the time taken does not say which.
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .fold(subtle::Choice::from(0), |found, given| {
            found | expected.as_slice().ct_eq(&given)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// Digits only: the specification's timestamp is an integer number of seconds, and a
/// sign, a fraction or spaces mean the sender is not one.
fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    let not_integer = VerifyError::Malformed("webhook-timestamp is not an integer");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_integer);
    }
    text.parse().map_err(|_| not_integer)
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(VerifyError::InvalidSecret),
    }
}

/// The raw HMAC-SHA256 of `{id}.{timestamp}.{body}`; the timestamp is signed as sent.
fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The specification's own known-answer vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str) -> [(&'static str, String); 3] {
        [
            ("Webhook-Id", ID.to_owned()),
            ("webhook-timestamp", TIMESTAMP.to_string()),
            ("WEBHOOK-SIGNATURE", signature.to_owned()),
        ]
    }

    #[test]
    fn accepts_the_specification_vector_with_any_header_case() {
        let verdict = verify_at(
            SECRET,
            &headers(SIGNATURE),
            BODY,
            DEFAULT_TOLERANCE,
            TIMESTAMP,
        );
        assert_eq!(verdict, Ok(()));
    }

    #[test]
    fn reads_an_http_header_map() {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers(SIGNATURE) {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        assert_eq!(
            verify_at(SECRET, &map, BODY, DEFAULT_TOLERANCE, TIMESTAMP + 10),
            Ok(())
        );
    }

    #[test]
    fn says_how_far_a_stale_timestamp_is() {
        let verdict = verify_at(
            SECRET,
            &headers(SIGNATURE),
            BODY,
            DEFAULT_TOLERANCE,
            TIMESTAMP + 301,
        );
        assert_eq!(verdict, Err(VerifyError::Stale { skew_secs: 301 }));
    }

    #[test]
    fn refuses_a_signed_timestamp_with_a_sign_or_spaces() {
        for timestamp in ["+1614265330", " 1614265330", "-5", ""] {
            let h = [
                (ID_HEADER, ID),
                (TIMESTAMP_HEADER, timestamp),
                (SIGNATURE_HEADER, SIGNATURE),
            ];
            assert!(
                matches!(
                    verify_at(SECRET, &h, BODY, DEFAULT_TOLERANCE, TIMESTAMP),
                    Err(VerifyError::Malformed(_))
                ),
                "{timestamp:?}"
            );
        }
    }

    #[test]
    fn refuses_a_secret_that_is_not_base64() {
        let verdict = verify_at(
            "whsec_!!!",
            &headers(SIGNATURE),
            BODY,
            DEFAULT_TOLERANCE,
            TIMESTAMP,
        );
        assert_eq!(verdict, Err(VerifyError::InvalidSecret));
    }
}
