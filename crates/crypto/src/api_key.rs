//! API keys: `twk_<id>_<secret><checksum>`.
//!
//! - `id`: 16 lowercase alphanumerics, public, finds the row.
//! - `secret`: 40 base62 characters (≈ 238 bits) from the OS CSPRNG.
//! - `checksum`: CRC32 of everything before it, 6 base62 digits, so secret scanners can
//!   tell a real key from random text offline and a typo is caught before any lookup.
//!
//! From the secret, HKDF-SHA-256 derives two unrelated values under different labels:
//! the *lookup hash* (stored, compared in constant time) and the *slot KEK* (never
//! stored, unwraps the vault DEK). A fast KDF is right here: the secret is uniformly
//! random, so there is nothing for a slow hash to protect.

use std::fmt;

use hkdf::Hkdf;
use rand::Rng;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokenwarden_domain::ApiKeyId;

use crate::Kek;

const PREFIX: &str = "twk_";
const SECRET_LEN: usize = 40;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOTAL_LEN: usize = PREFIX.len() + ApiKeyId::LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// A whole API key as its holder presents it. Redacted in `Debug` (only the public id
/// shows), zeroized on drop, not `Clone`.
pub struct ApiKey {
    id: ApiKeyId,
    secret: SecretString,
    text: SecretString,
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl ApiKey {
    /// A new key with a fresh id and secret.
    pub fn generate() -> Self {
        let mut rng = OsRng;
        let id = ApiKeyId::generate(&mut rng);
        let secret: String = (0..SECRET_LEN)
            .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
            .collect();
        let body = format!("{PREFIX}{id}_{secret}");
        let text = format!("{body}{}", checksum(&body));
        Self {
            id,
            secret: secret.into(),
            text: text.into(),
        }
    }

    /// Parses a presented key. Every failure is the same error: the caller answers all of
    /// them with one 401.
    pub fn parse(text: &str) -> Result<Self, InvalidApiKey> {
        if text.len() != TOTAL_LEN || !text.is_ascii() {
            return Err(InvalidApiKey);
        }
        let rest = text.strip_prefix(PREFIX).ok_or(InvalidApiKey)?;
        let (id, rest) = rest.split_at(ApiKeyId::LEN);
        let rest = rest.strip_prefix('_').ok_or(InvalidApiKey)?;
        let (secret, sum) = rest.split_at(SECRET_LEN);
        let id = ApiKeyId::parse(id).map_err(|_| InvalidApiKey)?;
        if !is_base62(secret) || !is_base62(sum) {
            return Err(InvalidApiKey);
        }
        let body = &text[..text.len() - CHECKSUM_LEN];
        if checksum(body).as_bytes().ct_eq(sum.as_bytes()).unwrap_u8() != 1 {
            return Err(InvalidApiKey);
        }
        Ok(Self {
            id,
            secret: secret.to_owned().into(),
            text: text.to_owned().into(),
        })
    }

    pub fn id(&self) -> &ApiKeyId {
        &self.id
    }

    /// The key as its holder will present it; shown once, at creation.
    pub fn expose_secret(&self) -> &str {
        self.text.expose_secret()
    }

    /// Derives the stored lookup hash and the slot KEK.
    pub fn derive(&self) -> ApiKeyMaterial {
        // The id is the salt: two keys never share derived values even if secrets
        // collided, and a hash cannot be moved to another key's row.
        let hk = Hkdf::<Sha256>::new(
            Some(self.id.as_str().as_bytes()),
            self.secret.expose_secret().as_bytes(),
        );
        let mut lookup = [0u8; 32];
        let mut kek = [0u8; 32];
        // Both outputs are 32 bytes, far under HKDF's limit: expand cannot fail.
        let _ = hk.expand(b"tokenwarden/api-key/lookup/v1", &mut lookup);
        let _ = hk.expand(b"tokenwarden/api-key/slot-kek/v1", &mut kek);
        let material = ApiKeyMaterial {
            lookup_hash: LookupHash(lookup),
            kek: Kek::from_bytes(kek),
        };
        zeroize::Zeroize::zeroize(&mut kek);
        material
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({PREFIX}{}_[redacted])", self.id)
    }
}

/// The presented text is not a well-formed tokenwarden API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid API key")]
pub struct InvalidApiKey;

/// What a key's secret derives to.
#[derive(Debug)]
pub struct ApiKeyMaterial {
    pub lookup_hash: LookupHash,
    pub kek: Kek,
}

/// The stored, keyed hash of an API key's secret. Not secret by itself (it cannot unwrap
/// anything), but compared only in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct LookupHash([u8; 32]);

impl LookupHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison with a stored hash.
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored.len() == self.0.len() && self.0.ct_eq(stored).unwrap_u8() == 1
    }
}

impl fmt::Debug for LookupHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LookupHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_derive_the_same_material() {
        let key = ApiKey::generate();
        assert_eq!(key.expose_secret().len(), TOTAL_LEN);
        let parsed = ApiKey::parse(key.expose_secret()).unwrap();
        assert_eq!(parsed.id(), key.id());
        assert!(
            parsed
                .derive()
                .lookup_hash
                .matches(key.derive().lookup_hash.as_bytes())
        );
    }

    #[test]
    fn the_checksum_catches_any_one_character_typo() {
        let key = ApiKey::generate();
        let text = key.expose_secret().to_owned();
        for i in PREFIX.len()..text.len() {
            if text.as_bytes()[i] == b'_' {
                continue;
            }
            for replacement in [b'0', b'a', b'Z'] {
                if text.as_bytes()[i] == replacement {
                    continue;
                }
                let mut typo = text.clone().into_bytes();
                typo[i] = replacement;
                let typo = String::from_utf8(typo).unwrap();
                assert!(ApiKey::parse(&typo).is_err(), "typo at {i} accepted");
            }
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let key = ApiKey::generate();
        let text = key.expose_secret();
        for bad in [
            "",
            "twk_",
            &text[..text.len() - 1],
            &format!("{text}0"),
            &text.replacen("twk_", "twx_", 1),
            &text.replace('_', "-"),
        ] {
            assert!(ApiKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn lookup_hash_and_kek_differ_and_debug_hides_the_secret() {
        let key = ApiKey::generate();
        let secret = &key.expose_secret()[PREFIX.len() + ApiKeyId::LEN + 1..];
        let m = key.derive();
        assert!(!format!("{key:?}").contains(secret));
        assert!(!format!("{m:?}").contains(secret));
        assert!(format!("{key:?}").contains(key.id().as_str()));
    }
}
