//! Checks a webhook as a receiver would: `cargo run --example receive` verifies the
//! Standard Webhooks specification's own example request.

use herald_client::verify::{DEFAULT_TOLERANCE, VerifyError, verify};

fn handle(headers: &http::HeaderMap, body: &[u8]) -> http::StatusCode {
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_default();
    match verify(&secret, headers, body, DEFAULT_TOLERANCE) {
        Ok(()) => {
            // The body is Herald's; process it (the webhook-id header deduplicates retries).
            http::StatusCode::NO_CONTENT
        }
        Err(VerifyError::Stale { skew_secs }) => {
            eprintln!("timestamp {skew_secs}s off: replay or clock skew");
            http::StatusCode::BAD_REQUEST
        }
        Err(e) => {
            eprintln!("refused: {e}");
            http::StatusCode::BAD_REQUEST
        }
    }
}

fn main() {
    // The specification's example, received long after it was sent: stale now.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "webhook-id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
    );
    headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
    headers.insert(
        "webhook-signature",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
            .parse()
            .unwrap(),
    );
    if std::env::var_os("WEBHOOK_SECRET").is_none() {
        eprintln!("set WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw to check the example");
    }
    println!("{}", handle(&headers, br#"{"test": 2432232314}"#));
}
