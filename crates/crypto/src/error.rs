//! Crypto failures. Deliberately coarse: a caller learns that something did not open,
//! never which byte or which check failed.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Wrong key, wrong binding, or altered bytes: the AEAD refused it.
    #[error("ciphertext did not authenticate")]
    Decrypt,
    /// Not an envelope this version understands (too short, unknown version byte).
    #[error("ciphertext is malformed")]
    Malformed,
    /// A key, or the parameters stored beside it, cannot be used.
    #[error("key material is invalid")]
    InvalidKey,
}
