#!/usr/bin/env python3
"""Writes signatures.json: Standard Webhooks signature vectors that every client's
`verify` and the server's signer must agree with.

Computed here from the definition alone (Python's standard `hmac`, `hashlib`, `base64`),
not with any Herald implementation: the signed content is `{id}.{timestamp}.{body}`, the
key the base64-decoded part of the `whsec_` secret, a signature `v1,<base64 HMAC-SHA256>`,
several in one header separated by spaces. The first vector is the specification's own.

Each vector gives the secret, the three headers, the body (base64), the receiver's clock
and tolerance, and what verify must say: valid, or which error (`stale`: the timestamp is
further than the tolerance from now; `no_match`: no v1 signature matches; `malformed`: a
header is missing or the timestamp is not an integer).

Run `python3 clients/conformance/generate.py` to regenerate; the output is deterministic.
"""

import base64
import hashlib
import hmac
import json
import pathlib

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
# From the specification's reference implementations, to check this script against.
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ROTATED_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"rotated").digest()).decode()
TOLERANCE = 300


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def vector(name, secret, body, signature, *, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP,
           now=SPEC_TIMESTAMP, error=None, headers=None):
    hs = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    if headers is not None:
        hs = headers
    return {
        "name": name,
        "secret": secret,
        "headers": hs,
        "body_base64": base64.b64encode(body).decode(),
        "now": now,
        "tolerance_seconds": TOLERANCE,
        "valid": error is None,
        "error": error,
    }


def main() -> None:
    spec = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert spec == SPEC_SIGNATURE, f"the HMAC definition gives {spec}"
    binary = bytes(range(256)) + b"\xff\xfe\x00"
    binary_sig = sign(OTHER_SECRET, "msg_binary", SPEC_TIMESTAMP, binary)
    rotated_pair = " ".join([
        sign(ROTATED_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
        sign(OTHER_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
    ])
    vectors = [
        vector("specification vector", SPEC_SECRET, SPEC_BODY, spec),
        vector("tampered body", SPEC_SECRET, b'{"test": 2432232315}', spec, error="no_match"),
        vector("wrong secret", OTHER_SECRET, SPEC_BODY, spec, error="no_match"),
        vector("another message id", SPEC_SECRET, SPEC_BODY, spec, msg_id="msg_other",
               error="no_match"),
        vector("expired timestamp", SPEC_SECRET, SPEC_BODY, spec,
               now=SPEC_TIMESTAMP + TOLERANCE + 1, error="stale"),
        vector("future timestamp", SPEC_SECRET, SPEC_BODY, spec,
               now=SPEC_TIMESTAMP - TOLERANCE - 1, error="stale"),
        vector("at the tolerance, late", SPEC_SECRET, SPEC_BODY, spec,
               now=SPEC_TIMESTAMP + TOLERANCE),
        vector("at the tolerance, early", SPEC_SECRET, SPEC_BODY, spec,
               now=SPEC_TIMESTAMP - TOLERANCE),
        vector("several signatures, the last matches", SPEC_SECRET, SPEC_BODY,
               "v1,bm90IHRoZSBzaWduYXR1cmU= " + spec),
        vector("rotation: the new secret verifies a pair", ROTATED_SECRET, SPEC_BODY,
               rotated_pair),
        vector("rotation: the old secret verifies a pair", OTHER_SECRET, SPEC_BODY,
               rotated_pair),
        vector("rotation: a third secret does not", SPEC_SECRET, SPEC_BODY, rotated_pair,
               error="no_match"),
        vector("binary body", OTHER_SECRET, binary, binary_sig, msg_id="msg_binary"),
        vector("empty body", SPEC_SECRET, b"", sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, b"")),
        vector("unknown version only", SPEC_SECRET, SPEC_BODY, "v2," + spec[3:],
               error="no_match"),
        vector("signature without version", SPEC_SECRET, SPEC_BODY, spec[3:],
               error="no_match"),
        vector("timestamp not a number", SPEC_SECRET, SPEC_BODY, spec, error="malformed",
               headers={"webhook-id": SPEC_ID, "webhook-timestamp": "1614265330.0",
                        "webhook-signature": spec}),
        vector("signature header missing", SPEC_SECRET, SPEC_BODY, spec, error="malformed",
               headers={"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)}),
    ]
    out = pathlib.Path(__file__).with_name("signatures.json")
    out.write_text(json.dumps({"vectors": vectors}, indent=2) + "\n")


if __name__ == "__main__":
    main()
