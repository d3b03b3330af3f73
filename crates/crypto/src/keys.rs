//! Symmetric keys: the vault data key, key-encryption keys, the server master key.

use std::fmt;

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::envelope::{self, KeyId};
use crate::plaintext::Plaintext;
use crate::{Binding, CryptoError, random_bytes};

fn secret32(bytes: [u8; 32]) -> SecretBox<[u8; 32]> {
    SecretBox::new(Box::new(bytes))
}

/// A vault's data key: 256 random bits that encrypt every secret in the vault. Exists in
/// memory only while a request that unwrapped it runs; never stored in the clear, not
/// `Clone`.
pub struct DataKey {
    id: KeyId,
    key: SecretBox<[u8; 32]>,
}

impl DataKey {
    pub fn generate(id: KeyId) -> Self {
        Self {
            id,
            key: secret32(random_bytes()),
        }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A one-off key derived from a high-entropy secret that only its holder presents
    /// (a connect session's `state`): HKDF-SHA-256 under `label`. Key id 0 marks it as
    /// derived, never a vault generation.
    pub fn derive_from_secret(secret: &[u8], label: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"tokenwarden/derived-key/v1"), secret);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA-256's limit: expand cannot fail.
        let _ = hk.expand(label, &mut key);
        let derived = Self {
            id: KeyId(0),
            key: secret32(key),
        };
        zeroize::Zeroize::zeroize(&mut key);
        derived
    }

    pub fn encrypt(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Vec<u8> {
        envelope::encrypt(self.key.expose_secret(), self.id, binding, plaintext)
    }

    pub fn decrypt(
        &self,
        binding: &Binding<'_>,
        ciphertext: &[u8],
    ) -> Result<Plaintext, CryptoError> {
        if envelope::key_id_of(ciphertext)? != self.id {
            return Err(CryptoError::Decrypt);
        }
        envelope::decrypt(self.key.expose_secret(), binding, ciphertext)
    }

    /// The raw key, for tests that prove it never reaches storage.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.key.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({:?}, [redacted])", self.id)
    }
}

/// A key-encryption key: opens one key slot. Derived from a secret its holder presents
/// (an API key, a password) or from the master key; never stored.
pub struct Kek(SecretBox<[u8; 32]>);

impl Kek {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(secret32(bytes))
    }

    /// Wraps `dek` into a slot bound to `binding`.
    pub fn wrap(&self, dek: &DataKey, binding: &Binding<'_>) -> Vec<u8> {
        envelope::encrypt(
            self.0.expose_secret(),
            dek.id,
            binding,
            dek.key.expose_secret(),
        )
    }

    /// Opens a slot made by [`Kek::wrap`] with the same binding.
    pub fn unwrap(&self, binding: &Binding<'_>, slot: &[u8]) -> Result<DataKey, CryptoError> {
        let id = envelope::key_id_of(slot)?;
        let plain = envelope::decrypt(self.0.expose_secret(), binding, slot)?;
        let bytes: [u8; 32] = plain
            .as_bytes()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey {
            id,
            key: secret32(bytes),
        })
    }

    /// Uses arbitrary 32 bytes as a KEK: for tests that try what an attacker holding the
    /// database could try.
    pub fn from_candidate(bytes: [u8; 32]) -> Self {
        Self::from_bytes(bytes)
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

/// The server's master key (managed vaults): 32 bytes from configuration.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(secret32(bytes))
    }

    /// Parses 64 hex digits or 43/44 characters of base64 (standard or URL-safe), as an
    /// operator would paste from `openssl rand -hex 32` or `-base64 32`.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine;
        let text = Zeroizing::new(text.trim().to_owned());
        let mut bytes = Zeroizing::new([0u8; 32]);
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, pair) in text.as_bytes().chunks(2).enumerate() {
                let s = std::str::from_utf8(pair).map_err(|_| CryptoError::InvalidKey)?;
                bytes[i] = u8::from_str_radix(s, 16).map_err(|_| CryptoError::InvalidKey)?;
            }
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            let decoded = engines
                .iter()
                .find_map(|e| e.decode(text.as_bytes()).ok())
                .map(Zeroizing::new)
                .ok_or(CryptoError::InvalidKey)?;
            *bytes = decoded
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::InvalidKey)?;
        }
        Ok(Self::from_bytes(*bytes))
    }

    pub(crate) fn expand(&self, label: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"tokenwarden/master-key/v1"), self.0.expose_secret());
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA-256's 8160-byte limit, so expand cannot fail.
        let _ = hk.expand(label, &mut out);
        out
    }

    /// The KEK of managed vaults' master slots.
    pub fn kek(&self) -> Kek {
        Kek::from_bytes(self.expand(b"slot-kek"))
    }

    /// A public fingerprint, stored so the server can refuse to start with another key.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.expand(b"fingerprint")
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}
