//! The key hierarchy of tokenwarden (docs/design.md, "The key hierarchy").
//!
//! A random data key (DEK) per vault encrypts everything secret in that vault. Each way in
//! (an API key, an account password, the server master key) is a *key slot*: the DEK
//! wrapped under a key-encryption key (KEK) derived from a secret that only its holder
//! presents. The database holds slots, hashes and ciphertexts, never anything that opens
//! them. The OAuth callback, which runs with no key holder present, seals new tokens to
//! the vault's public key instead of touching the DEK.
//!
//! Every primitive comes from a maintained crate: XChaCha20-Poly1305 (`chacha20poly1305`),
//! HKDF-SHA-256 (`hkdf`), Argon2id (`argon2`), HPKE with X25519 (`hpke`, RFC 9180).

mod api_key;
mod binding;
mod envelope;
mod error;
mod keys;
mod password;
mod plaintext;
mod random;
mod sealing;
mod server_key;

pub use api_key::{ApiKey, ApiKeyMaterial, LookupHash};
pub use binding::{Binding, Purpose};
pub use envelope::{ENVELOPE_OVERHEAD, KeyId};
pub use error::CryptoError;
pub use keys::{DataKey, Kek, MasterKey};
pub use password::{PasswordKdf, PasswordMaterial, PasswordVerifier};
pub use plaintext::Plaintext;
pub use random::random_bytes;
pub use sealing::{SealingPrivateKey, SealingPublicKey};
pub use server_key::{ServerKey, ServerKeyError};

#[cfg(test)]
mod tests;
