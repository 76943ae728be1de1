//! Endpoint secrets at rest: how an [`Endpoint`] becomes the record a backend stores, and
//! back. Both durable backends call [`Keyring::seal`] and [`Keyring::open`] and nothing
//! else, so what is encrypted, and how, is decided here once.
//!
//! With a master key (`WEBHOOK_MASTER_KEY`, 32 random bytes) the record is the endpoint's
//! JSON without its signing secrets (current and rotated-out) and without its custom
//! header values (they often hold the receiver's credentials); those travel in one
//! XChaCha20-Poly1305 box under a fresh random 24-byte nonce, with the endpoint id as
//! associated data (a box moved to another endpoint does not open), tagged with the id of
//! the key that sealed it:
//!
//! ```json
//! {"id":"ep_1","tenant":"acme","headers":[{"name":"x-token"}],…,
//!  "sealed":{"key":"3f2a…","box":"<base64 of nonce ‖ ciphertext>"}}
//! ```
//!
//! Everything else stays readable, so the Redis scripts still read the record's `tenant`.
//! Without a master key the record is the endpoint's JSON in clear. The memory store
//! keeps nothing at rest and does not seal.
//!
//! A key id is the first 8 bytes of SHA-256 over a fixed label and the key, in hex: it
//! names a key in records, logs and errors without revealing it. A record sealed under a
//! key the keyring does not hold, or that does not decrypt, is an error: Herald refuses to
//! start rather than sign with a wrong secret.
//!
//! Rotating the master key: the new key becomes `WEBHOOK_MASTER_KEY` and the old one goes
//! to `WEBHOOK_PREVIOUS_MASTER_KEYS`, which only open. After startup, records not sealed
//! as [`Keyring::seal`] would seal them now (under a previous key, or in clear while a key
//! is set) are sealed again in the background, a few at a time, through the same write
//! path as user changes (the embedded store's writer; on Redis a compare-and-set that
//! yields to a concurrent change). The gauge `webhook_secrets_pending_reseal` falls to 0
//! when that is done; then the old key may be dropped. On Redis, where several instances
//! share the records, roll in two steps, so that no instance ever meets a key it cannot
//! open: first give every instance the new key as a previous key (restart each), then
//! make it current everywhere (the old one as previous), wait for the gauge to reach 0 on
//! an instance, and only then remove the old key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{Endpoint, SigningSecrets};

/// Bytes of a nonce of XChaCha20-Poly1305: random nonces this long never collide.
const NONCE_LEN: usize = 24;
/// What a key id is derived with, so it cannot be mistaken for another hash of the key.
const KEY_ID_LABEL: &[u8] = b"herald master key id\0";

/// The public name of a master key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a master key setting is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a master key must be base64 (make one with `openssl rand -base64 32`)")]
    NotBase64,
    #[error(
        "a master key must be 32 bytes, this one is {0} (make one with `openssl rand -base64 32`)"
    )]
    Length(usize),
}

/// A 32-byte master key. `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    pub const LEN: usize = 32;

    /// # Errors
    /// When the value (surrounding whitespace aside) is not base64 of 32 bytes.
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let bytes = BASE64
            .decode(value.trim())
            .map_err(|_| KeyError::NotBase64)?;
        let key: [u8; Self::LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Self::from_bytes(key))
    }

    pub fn from_bytes(key: [u8; Self::LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(key)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id: KeyId(id),
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// Why a stored endpoint record cannot be turned back into an endpoint, or an endpoint
/// into its record.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the secrets of endpoint {endpoint} are sealed with master key {key}, which is not configured (configured: {configured}); set WEBHOOK_MASTER_KEY or WEBHOOK_PREVIOUS_MASTER_KEYS to the key with id {key}"
    )]
    UnknownKey {
        endpoint: String,
        key: KeyId,
        /// The ids the keyring holds, for the operator to compare.
        configured: String,
    },
    #[error(
        "the secrets of endpoint {endpoint} do not decrypt with master key {key}: the stored record was altered"
    )]
    Tampered { endpoint: String, key: KeyId },
    #[error("an endpoint record is not valid")]
    Malformed(#[from] serde_json::Error),
}

/// What the box of a record holds.
#[derive(Serialize, Deserialize)]
struct Secrets {
    secrets: SigningSecrets,
    /// The custom header values, in the order of the record's headers.
    header_values: Vec<String>,
}

/// The `sealed` member of a record.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The id of the key that sealed the box.
    key: String,
    /// The nonce followed by the ciphertext, in base64.
    #[serde(rename = "box")]
    data: String,
}

/// An endpoint read back from its record.
#[derive(Debug)]
pub struct Opened {
    pub endpoint: Endpoint,
    /// Whether the record is sealed as [`Keyring::seal`] would seal it now; a record that
    /// is not is sealed again in the background.
    pub current: bool,
}

/// The master keys: the current one seals; it and every previous one open.
#[derive(Clone, Default)]
pub struct Keyring {
    current: Option<MasterKey>,
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Keyring {
    pub fn new(current: Option<MasterKey>, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// The id of the key records are sealed with; `None`: they are stored in clear.
    pub fn current(&self) -> Option<&KeyId> {
        self.current.as_ref().map(MasterKey::id)
    }

    fn key(&self, id: &str) -> Option<&MasterKey> {
        self.current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id.as_str() == id)
    }

    /// The configured ids, the current one marked.
    fn describe(&self) -> String {
        let ids: Vec<String> = self
            .current
            .iter()
            .map(|k| format!("{} (current)", k.id))
            .chain(self.previous.iter().map(|k| k.id.to_string()))
            .collect();
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    }

    /// The record to store for `endpoint`: its secrets and header values sealed under the
    /// current key, or everything in clear without one.
    ///
    /// # Errors
    /// When the endpoint does not serialise (it always does).
    pub fn seal(&self, endpoint: &Endpoint) -> Result<String, SealError> {
        let Some(key) = &self.current else {
            return Ok(serde_json::to_string(endpoint)?);
        };
        let Value::Object(mut record) = serde_json::to_value(endpoint)? else {
            return Err(SealError::Malformed(serde_json::Error::custom(
                "an endpoint is a JSON object",
            )));
        };
        record.remove("secrets");
        for header in headers_of(&mut record) {
            header.remove("value");
        }
        let plain = serde_json::to_vec(&Secrets {
            secrets: endpoint.secrets.clone(),
            header_values: endpoint.headers.iter().map(|h| h.value.clone()).collect(),
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: endpoint.id.as_str().as_bytes(),
                },
            )
            .expect("encryption fails only beyond 256 GiB");
        let mut data = nonce.to_vec();
        data.extend_from_slice(&ciphertext);
        let sealed = Sealed {
            key: key.id.to_string(),
            data: BASE64.encode(data),
        };
        record.insert("sealed".to_owned(), serde_json::to_value(sealed)?);
        Ok(serde_json::to_string(&record)?)
    }

    /// The endpoint a stored record holds, its secrets opened.
    ///
    /// # Errors
    /// When the record is sealed under a key the keyring lacks
    /// ([`SealError::UnknownKey`]), does not decrypt under its key
    /// ([`SealError::Tampered`]), or is not an endpoint record.
    pub fn open(&self, record: &str) -> Result<Opened, SealError> {
        let Value::Object(mut record) = serde_json::from_str(record)? else {
            return Err(SealError::Malformed(serde_json::Error::custom(
                "an endpoint record is a JSON object",
            )));
        };
        let Some(sealed) = record.remove("sealed") else {
            return Ok(Opened {
                endpoint: serde_json::from_value(Value::Object(record))?,
                current: self.current.is_none(),
            });
        };
        let sealed: Sealed = serde_json::from_value(sealed)?;
        let endpoint_id = record
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(key) = self.key(&sealed.key) else {
            return Err(SealError::UnknownKey {
                endpoint: endpoint_id,
                key: KeyId(sealed.key),
                configured: self.describe(),
            });
        };
        let tampered = || SealError::Tampered {
            endpoint: endpoint_id.clone(),
            key: key.id.clone(),
        };
        let data = BASE64.decode(&sealed.data).map_err(|_| tampered())?;
        if data.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: endpoint_id.as_bytes(),
                },
            )
            .map_err(|_| tampered())?;
        let secrets: Secrets = serde_json::from_slice(&plain)?;
        let headers = headers_of(&mut record);
        if headers.len() != secrets.header_values.len() {
            return Err(tampered());
        }
        for (header, value) in headers.into_iter().zip(secrets.header_values) {
            header.insert("value".to_owned(), Value::String(value));
        }
        record.insert("secrets".to_owned(), serde_json::to_value(secrets.secrets)?);
        Ok(Opened {
            endpoint: serde_json::from_value(Value::Object(record))?,
            current: self.current().is_some_and(|k| k.as_str() == sealed.key),
        })
    }
}

/// The header objects of an endpoint record.
fn headers_of(record: &mut Map<String, Value>) -> Vec<&mut Map<String, Value>> {
    record
        .get_mut("headers")
        .and_then(Value::as_array_mut)
        .map(|headers| {
            headers
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::domain::{CustomHeader, EndpointId, Secret, TenantId};

    fn endpoint() -> Endpoint {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut secrets = SigningSecrets::new(Secret::generate());
        secrets.rotate(Secret::generate(), now + Duration::from_secs(3600));
        Endpoint {
            id: EndpointId::parse("ep_sealing").unwrap(),
            tenant: TenantId::parse("acme").unwrap(),
            url: "https://example.com/hook".parse().unwrap(),
            description: String::new(),
            event_types: Vec::new(),
            channels: Vec::new(),
            headers: vec![
                CustomHeader::parse("x-token", "receiver-credential").unwrap(),
                CustomHeader::parse("x-other", "second-value").unwrap(),
            ],
            retry: Default::default(),
            protection: Default::default(),
            disabled: None,
            failing_since: None,
            secrets,
            created_at: now,
            updated_at: now,
        }
    }

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; MasterKey::LEN])
    }

    fn ring(current: u8, previous: &[u8]) -> Keyring {
        Keyring::new(
            Some(key(current)),
            previous.iter().map(|b| key(*b)).collect(),
        )
    }

    /// Every secret of the endpoint in every form it could leak: `whsec_…`, the base64
    /// body, and the header values.
    fn secret_texts(endpoint: &Endpoint) -> Vec<String> {
        let mut texts = Vec::new();
        for secret in endpoint.secrets.valid_at(SystemTime::UNIX_EPOCH) {
            texts.push(secret.expose());
            texts.push(BASE64.encode(secret.key()));
        }
        texts.extend(endpoint.headers.iter().map(|h| h.value.clone()));
        texts
    }

    #[test]
    fn a_sealed_record_opens_to_the_same_endpoint_and_hides_every_secret() {
        let endpoint = endpoint();
        let keyring = ring(1, &[]);
        let record = keyring.seal(&endpoint).unwrap();
        let texts = secret_texts(&endpoint);
        assert_eq!(texts.len(), 6);
        for text in texts {
            assert!(!record.contains(&text), "{text} is in the record in clear");
        }
        assert!(record.contains(r#""tenant":"acme""#), "{record}");
        assert!(record.contains(r#""name":"x-token""#), "{record}");
        let opened = keyring.open(&record).unwrap();
        assert_eq!(opened.endpoint, endpoint);
        assert!(opened.current);
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let endpoint = endpoint();
        let keyring = ring(1, &[]);
        assert_ne!(
            keyring.seal(&endpoint).unwrap(),
            keyring.seal(&endpoint).unwrap()
        );
    }

    #[test]
    fn a_record_is_tagged_with_the_id_of_its_key() {
        let record = ring(1, &[]).seal(&endpoint()).unwrap();
        let value: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(value["sealed"]["key"], key(1).id().as_str());
        assert_eq!(key(1).id().as_str().len(), 16);
        assert_ne!(key(1).id(), key(2).id());
        assert_eq!(
            key(1).id(),
            MasterKey::parse(&BASE64.encode([1u8; 32])).unwrap().id()
        );
    }

    #[test]
    fn a_previous_key_opens_but_the_record_is_not_current() {
        let endpoint = endpoint();
        let record = ring(1, &[]).seal(&endpoint).unwrap();
        let opened = ring(2, &[1]).open(&record).unwrap();
        assert_eq!(opened.endpoint, endpoint);
        assert!(!opened.current);
        let resealed = ring(2, &[1]).seal(&opened.endpoint).unwrap();
        assert!(ring(2, &[]).open(&resealed).unwrap().current);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_settings() {
        let record = ring(1, &[]).seal(&endpoint()).unwrap();
        for keyring in [ring(2, &[3]), Keyring::default()] {
            let e = keyring.open(&record).unwrap_err();
            assert!(matches!(&e, SealError::UnknownKey { key: k, .. } if k == key(1).id()));
            let text = e.to_string();
            assert!(text.contains(key(1).id().as_str()), "{text}");
            assert!(text.contains("ep_sealing"), "{text}");
            assert!(text.contains("WEBHOOK_MASTER_KEY"), "{text}");
            assert!(text.contains("WEBHOOK_PREVIOUS_MASTER_KEYS"), "{text}");
        }
    }

    #[test]
    fn an_altered_record_does_not_open() {
        let keyring = ring(1, &[]);
        let record = keyring.seal(&endpoint()).unwrap();
        let mut value: Value = serde_json::from_str(&record).unwrap();
        let data = value["sealed"]["box"].as_str().unwrap().to_owned();
        let mut bytes = BASE64.decode(&data).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        value["sealed"]["box"] = Value::String(BASE64.encode(bytes));
        let flipped = serde_json::to_string(&value).unwrap();
        assert!(matches!(
            keyring.open(&flipped),
            Err(SealError::Tampered { .. })
        ));
        // A box moved to another endpoint's record does not open either.
        let moved = record.replace("ep_sealing", "ep_elsewhere");
        assert!(matches!(
            keyring.open(&moved),
            Err(SealError::Tampered { .. })
        ));
        let truncated = record.replace(&data, &data[..20]);
        assert!(matches!(
            keyring.open(&truncated),
            Err(SealError::Tampered { .. })
        ));
    }

    #[test]
    fn without_a_key_records_are_in_clear_and_current() {
        let endpoint = endpoint();
        let record = Keyring::default().seal(&endpoint).unwrap();
        assert!(record.contains(&endpoint.secrets.current.expose()));
        let opened = Keyring::default().open(&record).unwrap();
        assert_eq!(opened.endpoint, endpoint);
        assert!(opened.current);
        // With a key set, the clear record still opens and is sealed again.
        let opened = ring(1, &[]).open(&record).unwrap();
        assert_eq!(opened.endpoint, endpoint);
        assert!(!opened.current);
    }

    #[test]
    fn key_settings_must_be_32_bytes_of_base64() {
        assert_eq!(
            MasterKey::parse("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            MasterKey::parse(&BASE64.encode([0u8; 16])).unwrap_err(),
            KeyError::Length(16)
        );
        assert!(MasterKey::parse(&format!(" {}\n", BASE64.encode([7u8; 32]))).is_ok());
        assert_eq!(
            format!("{:?}", key(1)),
            format!("MasterKey({})", key(1).id())
        );
    }
}
