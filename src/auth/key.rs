//! Herald API keys: the public key id format, minting new tokens, splitting a
//! presented bearer token into id and secret, and the hash that is stored in
//! place of the secret. This module is pure and synchronous; it does not store
//! or look up keys, attach scopes or tenants to them, read request headers, or
//! decide what a key may do.
//!
//! A token is `<id>.<secret>`: the id is `hk_` plus a lowercase ULID and is
//! safe to log and index; the secret is 32 random bytes, base64url without
//! padding (43 characters), and is shown to the user exactly once.
//!
//! # Why a single SHA-256 is the right hash here
//!
//! The secret carries 256 bits from a cryptographically secure generator, so
//! recovering it from its SHA-256 digest means searching a 2^256 space: no
//! hash speed makes that feasible. Slow password hashes (argon2, bcrypt,
//! scrypt) exist to stretch low-entropy, human-chosen passwords; applied to a
//! random secret they add nothing but CPU cost on every authenticated request,
//! which itself becomes a denial-of-service lever. The stored record is found
//! by the public id, never by the secret, and the presented secret is compared
//! by hashing it and comparing the two fixed-length digests in constant time,
//! so response timing reveals nothing about the stored secret.
//!
//! # Operator-configured bootstrap keys
//!
//! Bootstrap or admin keys set by an operator are arbitrary strings of at
//! least [`MIN_BOOTSTRAP_KEY_LEN`] characters rather than `<id>.<secret>`
//! tokens. They are held the same way: keep only
//! [`SecretHash::of_bootstrap_key`] (or [`SecretHash::of`] on the whole
//! string) and check a presented token with [`SecretHash::matches`] on the
//! whole token. The fast-hash argument above only holds if such keys are
//! random (e.g. `openssl rand -base64 32`), which the README demands; the
//! length floor merely rejects obvious placeholders.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use ulid::Ulid;

/// Prefix of every Herald API key id.
pub const KEY_ID_PREFIX: &str = "hk_";

/// Minimum length, in characters, of an operator-configured bootstrap key.
pub const MIN_BOOTSTRAP_KEY_LEN: usize = 32;

const ULID_LEN: usize = 26;
const SECRET_BYTES: usize = 32;
/// Unpadded base64 of 32 bytes.
const SECRET_LEN: usize = 43;
const HASH_LEN: usize = 32;
const HEX_LEN: usize = HASH_LEN * 2;

/// Why a string is not a valid [`ApiKeyId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyId {
    /// The id does not start with `hk_`.
    #[error("API key id must start with `{KEY_ID_PREFIX}`")]
    MissingPrefix,
    /// The part after the prefix is not 26 characters long.
    #[error("API key id must have {ULID_LEN} characters after `{KEY_ID_PREFIX}`, found {0}")]
    WrongLength(usize),
    /// The part after the prefix does not decode as a ULID.
    #[error("API key id does not contain a valid ULID")]
    NotUlid(#[source] ulid::DecodeError),
    /// The ULID decodes but is not written in canonical lowercase form.
    #[error("API key id must be a lowercase canonical ULID")]
    NotCanonical,
}

/// Public identifier of an API key: `hk_` followed by a lowercase ULID.
///
/// Safe to log, index and show in listings. Ordering follows creation time
/// because ULIDs sort by their timestamp prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// Creates a fresh id from the current time and random bits.
    #[must_use]
    pub fn generate() -> Self {
        Self(format!(
            "{KEY_ID_PREFIX}{}",
            Ulid::new().to_string().to_ascii_lowercase()
        ))
    }

    /// Parses an id, accepting only the exact canonical format.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidKeyId`] when the prefix is missing, the ULID part has
    /// the wrong length, does not decode, or is not canonical lowercase.
    pub fn parse(s: &str) -> Result<Self, InvalidKeyId> {
        let ulid_part = s
            .strip_prefix(KEY_ID_PREFIX)
            .ok_or(InvalidKeyId::MissingPrefix)?;
        if ulid_part.len() != ULID_LEN {
            return Err(InvalidKeyId::WrongLength(ulid_part.len()));
        }
        let ulid = Ulid::from_string(ulid_part).map_err(InvalidKeyId::NotUlid)?;
        // The decoder is case-insensitive and may accept look-alike letters;
        // insisting on the re-encoded form gives every key exactly one spelling,
        // so ids compare and index as plain strings.
        if ulid.to_string().to_ascii_lowercase() != ulid_part {
            return Err(InvalidKeyId::NotCanonical);
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text, e.g. `hk_01jd8x...`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = InvalidKeyId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ApiKeyId> for String {
    fn from(id: ApiKeyId) -> Self {
        id.0
    }
}

/// A complete token (`<id>.<secret>`) handed to the user once at creation.
///
/// `Debug` shows only the id so the token cannot leak through logs; there is
/// deliberately no `Display`.
pub struct IssuedToken(String);

impl IssuedToken {
    /// The full token, to be returned to the user and nowhere else.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0.split_once('.').map_or("", |(id, _)| id);
        f.debug_struct("IssuedToken")
            .field("id", &id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Mints API key tokens; never instantiated.
pub enum ApiKeyToken {}

impl ApiKeyToken {
    /// Creates a new key: its public id, the token to give to the user, and
    /// the hash of the secret to store.
    ///
    /// Randomness comes from `rand::rng()`: a ChaCha12 generator seeded from
    /// the operating system and periodically reseeded, i.e. a CSPRNG. It is
    /// preferred over calling `OsRng` directly because it is infallible, which
    /// keeps this function free of an error path that never fires in practice,
    /// and it avoids a system call per key.
    #[must_use]
    pub fn generate() -> (ApiKeyId, IssuedToken, SecretHash) {
        let id = ApiKeyId::generate();
        let secret = random_secret(&mut rand::rng());
        let hash = SecretHash::of(&secret);
        let token = IssuedToken(format!("{id}.{secret}"));
        (id, token, hash)
    }
}

// The `CryptoRng` bound makes the compiler reject any later swap to a
// non-cryptographic generator.
fn random_secret<R: CryptoRng + RngCore>(rng: &mut R) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a stored hash could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecretHash {
    /// The text is not 64 characters long.
    #[error("secret hash must be {HEX_LEN} hex characters, found {0}")]
    WrongLength(usize),
    /// The text contains a character that is not a hex digit.
    #[error("secret hash contains a non-hex character")]
    NotHex,
}

/// Why an operator-configured bootstrap key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bootstrap key has {len} characters; at least {MIN_BOOTSTRAP_KEY_LEN} are required")]
pub struct WeakBootstrapKey {
    /// Length of the refused key, in characters.
    pub len: usize,
}

/// SHA-256 digest of a secret; what Herald stores instead of the secret.
///
/// `Debug` is redacted: for bootstrap keys of unknown entropy the digest
/// could help an offline guess, so it stays out of logs too. There is no
/// `PartialEq`, so comparisons go through the constant-time [`Self::matches`].
#[derive(Clone, Copy)]
pub struct SecretHash([u8; HASH_LEN]);

impl SecretHash {
    /// Hashes a secret.
    ///
    /// For minted keys pass the secret part returned by [`parse_bearer`]. For
    /// operator bootstrap keys pass the whole configured string, and later
    /// the whole presented token to [`Self::matches`].
    #[must_use]
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Hashes an operator-configured bootstrap key after checking its length.
    ///
    /// # Errors
    ///
    /// Returns [`WeakBootstrapKey`] when the key is shorter than
    /// [`MIN_BOOTSTRAP_KEY_LEN`] characters.
    pub fn of_bootstrap_key(key: &str) -> Result<Self, WeakBootstrapKey> {
        let len = key.chars().count();
        if len < MIN_BOOTSTRAP_KEY_LEN {
            return Err(WeakBootstrapKey { len });
        }
        Ok(Self::of(key))
    }

    /// Whether `secret` hashes to this digest, compared in constant time.
    #[must_use]
    pub fn matches(&self, secret: &str) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }

    /// Lowercase hex form for storage.
    #[must_use]
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(HEX_LEN);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Reads back a digest written by [`Self::to_hex`] (either case).
    ///
    /// # Errors
    ///
    /// Returns [`InvalidSecretHash`] when the text is not exactly 64 hex
    /// digits.
    pub fn from_hex(s: &str) -> Result<Self, InvalidSecretHash> {
        let bytes = s.as_bytes();
        if bytes.len() != HEX_LEN {
            return Err(InvalidSecretHash::WrongLength(s.len()));
        }
        let mut out = [0u8; HASH_LEN];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or(InvalidSecretHash::NotHex)?;
            let low = hex_value(pair[1]).ok_or(InvalidSecretHash::NotHex)?;
            *slot = (high << 4) | low;
        }
        Ok(Self(out))
    }
}

/// Stored as hex, so a store holds only the digest.
impl Serialize for SecretHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        Self::from_hex(&hex).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits a presented token (the text after `Bearer `) into its key id and
/// secret part.
///
/// Returns `None` for anything that is not exactly `<id>.<secret>` with a
/// canonical id and a secret of 43 base64url characters encoding 32 bytes.
/// Rejecting malformed input here keeps garbage away from the key store
/// lookup; `None` carries no reason so callers cannot leak one.
#[must_use]
pub fn parse_bearer(token: &str) -> Option<(ApiKeyId, &str)> {
    let (id, secret) = token.split_once('.')?;
    let id = ApiKeyId::parse(id).ok()?;
    if secret.len() != SECRET_LEN {
        return None;
    }
    // The strict engine also rejects non-zero trailing bits, so each secret
    // has a single accepted spelling.
    let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
    (decoded.len() == SECRET_BYTES).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_ID: &str = "hk_01jd8x3v6k9q2w7e5r4t0y1m2a";

    fn sample_secret() -> String {
        URL_SAFE_NO_PAD.encode([7u8; SECRET_BYTES])
    }

    #[test]
    fn generated_token_parses_back_to_its_parts() {
        let (id, token, hash) = ApiKeyToken::generate();
        assert!(id.as_str().starts_with(KEY_ID_PREFIX));
        assert_eq!(id.as_str().len(), KEY_ID_PREFIX.len() + ULID_LEN);
        assert_eq!(ApiKeyId::parse(id.as_str()).unwrap(), id);

        let (parsed_id, secret) = parse_bearer(token.expose()).unwrap();
        assert_eq!(parsed_id, id);
        assert_eq!(secret.len(), SECRET_LEN);
        assert!(hash.matches(secret));
    }

    #[test]
    fn hash_matches_only_the_right_secret() {
        let (_, token, hash) = ApiKeyToken::generate();
        let (_, secret) = parse_bearer(token.expose()).unwrap();
        assert!(hash.matches(secret));
        assert!(!hash.matches(&sample_secret()));
        assert!(!hash.matches(""));
        assert!(!hash.matches(token.expose()));
    }

    #[test]
    fn two_generated_tokens_differ() {
        let (id_a, token_a, hash_a) = ApiKeyToken::generate();
        let (id_b, token_b, hash_b) = ApiKeyToken::generate();
        assert_ne!(id_a, id_b);
        assert_ne!(token_a.expose(), token_b.expose());
        assert_ne!(hash_a.to_hex(), hash_b.to_hex());
        let (_, secret_a) = parse_bearer(token_a.expose()).unwrap();
        let (_, secret_b) = parse_bearer(token_b.expose()).unwrap();
        assert_ne!(secret_a, secret_b);
    }

    #[test]
    fn well_formed_sample_is_accepted() {
        let token = format!("{SAMPLE_ID}.{}", sample_secret());
        let (id, secret) = parse_bearer(&token).unwrap();
        assert_eq!(id.as_str(), SAMPLE_ID);
        assert_eq!(secret, sample_secret());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let secret = sample_secret();
        let upper_id = format!("hk_{}", SAMPLE_ID[3..].to_ascii_uppercase());
        let non_base64 = format!("{}!", &secret[..SECRET_LEN - 1]);
        let padded = format!("{secret}=");
        let short_secret = &secret[..SECRET_LEN - 1];
        // 'B' as the final character sets bits the 32 bytes do not use.
        let non_canonical = format!("{}B", &secret[..SECRET_LEN - 1]);
        let cases = [
            format!("{SAMPLE_ID}{secret}"),                            // no dot
            format!("ak_{}.{secret}", &SAMPLE_ID[3..]),                // bad prefix
            format!("{SAMPLE_ID}.{secret}").replace("hk_", "hk"),      // no underscore
            format!("{}.{secret}", &SAMPLE_ID[..SAMPLE_ID.len() - 1]), // short id
            format!("{upper_id}.{secret}"),                            // uppercase id
            format!("hk_01jd8x3v6k9q2w7e5r4t0y1mil.{secret}"),         // look-alike letters
            format!("hk_81jd8x3v6k9q2w7e5r4t0y1m2a.{secret}"),         // ULID overflow
            format!("{SAMPLE_ID}."),                                   // empty secret
            format!("{SAMPLE_ID}.{non_base64}"),
            format!("{SAMPLE_ID}.{padded}"),
            format!("{SAMPLE_ID}.{short_secret}"),
            format!("{SAMPLE_ID}.{non_canonical}"),
            format!("{SAMPLE_ID}.{secret}.extra"),
            format!(".{secret}"),
            String::new(),
        ];
        for case in &cases {
            assert!(parse_bearer(case).is_none(), "accepted {case:?}");
        }
    }

    #[test]
    fn id_parse_reports_why() {
        assert_eq!(
            ApiKeyId::parse("xx_01jd8x3v6k9q2w7e5r4t0y1m2a"),
            Err(InvalidKeyId::MissingPrefix)
        );
        assert_eq!(
            ApiKeyId::parse("hk_01jd"),
            Err(InvalidKeyId::WrongLength(4))
        );
        assert_eq!(
            ApiKeyId::parse(&SAMPLE_ID.to_ascii_uppercase().replace("HK_", "hk_")),
            Err(InvalidKeyId::NotCanonical)
        );
        assert!(matches!(
            ApiKeyId::parse("hk_01jd8x3v6k9q2w7e5r4t0y1u2!"),
            Err(InvalidKeyId::NotUlid(_))
        ));
    }

    #[test]
    fn id_serializes_as_a_plain_string_and_validates_on_the_way_in() {
        let id = ApiKeyId::parse(SAMPLE_ID).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{SAMPLE_ID}\""));
        assert_eq!(serde_json::from_str::<ApiKeyId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ApiKeyId>("\"hk_nope\"").is_err());
        assert_eq!(id.to_string(), SAMPLE_ID);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let older = ApiKeyId::parse("hk_01jd8x3v6k9q2w7e5r4t0y1m2a").unwrap();
        let newer = ApiKeyId::parse("hk_01jd8x3v6m0000000000000000").unwrap();
        assert!(older < newer);
    }

    #[test]
    fn hex_round_trip_and_bad_hex_rejected() {
        let hash = SecretHash::of("some secret");
        let hex = hash.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        let back = SecretHash::from_hex(&hex).unwrap();
        assert!(back.matches("some secret"));
        assert_eq!(
            SecretHash::from_hex(&hex.to_ascii_uppercase())
                .unwrap()
                .to_hex(),
            hex
        );

        assert_eq!(
            SecretHash::from_hex(&hex[..63]).unwrap_err(),
            InvalidSecretHash::WrongLength(63)
        );
        assert_eq!(
            SecretHash::from_hex(&format!("{}g", &hex[..63])).unwrap_err(),
            InvalidSecretHash::NotHex
        );
        assert_eq!(
            SecretHash::from_hex("").unwrap_err(),
            InvalidSecretHash::WrongLength(0)
        );
        // A multi-byte character must not slip through as two "hex" bytes.
        assert!(SecretHash::from_hex(&format!("é{}", &hex[..62])).is_err());
    }

    #[test]
    fn known_digest() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            SecretHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bootstrap_keys_are_hashed_whole_and_need_a_minimum_length() {
        let key = "0123456789abcdefghijklmnopqrstuv";
        let hash = SecretHash::of_bootstrap_key(key).unwrap();
        assert!(hash.matches(key));
        assert!(!hash.matches(&key[..31]));
        assert_eq!(
            SecretHash::of_bootstrap_key(&key[..31]).unwrap_err(),
            WeakBootstrapKey { len: 31 }
        );
    }

    #[test]
    fn debug_output_does_not_reveal_secrets() {
        let (id, token, hash) = ApiKeyToken::generate();
        let (_, secret) = parse_bearer(token.expose()).unwrap();
        let token_debug = format!("{token:?}");
        assert!(!token_debug.contains(secret), "{token_debug}");
        assert!(token_debug.contains(id.as_str()));
        assert!(token_debug.contains("<redacted>"));
        let hash_debug = format!("{hash:?}");
        assert!(!hash_debug.contains(&hash.to_hex()));
    }
}
