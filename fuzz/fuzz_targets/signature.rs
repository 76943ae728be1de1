//! The signature verifier, on anything a receiver could be sent.
//!
//! Verifying a hostile header, id, timestamp and body under any secret, clock and
//! tolerance never panics, and says stale exactly when the timestamp is out of tolerance.
//! Signing then verifying round-trips, beside garbage and beside a signature made with
//! another secret, and a changed body no longer verifies.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald::delivery::signer::{VerifyError, sign, signature_header, verify};
use herald::domain::Secret;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Received<'a> {
    key: &'a [u8],
    header: &'a str,
    id: &'a str,
    timestamp: i64,
    body: &'a [u8],
    now: i64,
    tolerance: i64,
}

fuzz_target!(|r: Received| {
    // A key of the lengths a secret may have (24 to 64 bytes), from the input's bytes.
    let mut key = r.key.to_vec();
    key.resize(key.len().clamp(24, 64), 0x5a);
    let secret = Secret::parse(&format!("whsec_{}", BASE64.encode(&key))).expect("24-64 bytes");

    let verdict = verify(
        &secret,
        r.header,
        r.id,
        r.timestamp,
        r.body,
        r.now,
        r.tolerance,
    );
    let in_tolerance = i128::from(r.now)
        .abs_diff(i128::from(r.timestamp))
        .le(&u128::try_from(r.tolerance).unwrap_or(0));
    if r.tolerance >= 0 {
        assert_eq!(
            in_tolerance,
            !matches!(verdict, Err(VerifyError::Stale { .. })),
            "{verdict:?}"
        );
    }

    let signature = sign(&secret, r.id, r.timestamp, r.body);
    assert_eq!(
        verify(
            &secret,
            &signature,
            r.id,
            r.timestamp,
            r.body,
            r.timestamp,
            0
        ),
        Ok(())
    );
    let beside_garbage = format!("{} {signature}", r.header);
    assert_eq!(
        verify(
            &secret,
            &beside_garbage,
            r.id,
            r.timestamp,
            r.body,
            r.timestamp,
            0
        ),
        Ok(())
    );
    let other = Secret::parse(&format!("whsec_{}", BASE64.encode([0xa5; 32]))).expect("32 bytes");
    let rotated = signature_header([&other, &secret], r.id, r.timestamp, r.body);
    assert_eq!(
        verify(&secret, &rotated, r.id, r.timestamp, r.body, r.timestamp, 0),
        Ok(())
    );
    let mut changed = r.body.to_vec();
    changed.push(b'!');
    assert_eq!(
        verify(
            &secret,
            &signature,
            r.id,
            r.timestamp,
            &changed,
            r.timestamp,
            0
        ),
        Err(VerifyError::NoMatch)
    );
});
