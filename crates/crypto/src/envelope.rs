//! The self-describing ciphertext format.
//!
//! ```text
//! symmetric (version 1): 0x01 ‖ key id (u32 BE) ‖ nonce (24) ‖ XChaCha20-Poly1305(ct ‖ tag)
//! sealed    (version 2): 0x02 ‖ key id (u32 BE) ‖ HPKE encapsulated key (32) ‖ ct ‖ tag
//! ```
//!
//! The header (version and key id) is part of the associated data, so neither can be
//! altered without the tag failing. XChaCha20's 192-bit nonces are drawn at random:
//! collisions are negligible for any number of encryptions a vault will ever make.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::plaintext::Plaintext;
use crate::{Binding, CryptoError, random_bytes};

pub(crate) const VERSION_SYMMETRIC: u8 = 1;
pub(crate) const VERSION_SEALED: u8 = 2;
pub(crate) const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Bytes a symmetric envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Which generation of a key encrypted an envelope (a vault's DEK starts at 1 and counts
/// up when rotated), so a reader can tell which key a ciphertext needs without trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

pub(crate) fn header(version: u8, key_id: KeyId) -> [u8; HEADER_LEN] {
    let id = key_id.0.to_be_bytes();
    [version, id[0], id[1], id[2], id[3]]
}

/// Splits and checks the header; returns the key id and the rest.
pub(crate) fn parse_header(bytes: &[u8], version: u8) -> Result<(KeyId, &[u8]), CryptoError> {
    match bytes {
        [v, a, b, c, d, rest @ ..] if *v == version => {
            Ok((KeyId(u32::from_be_bytes([*a, *b, *c, *d])), rest))
        }
        _ => Err(CryptoError::Malformed),
    }
}

pub(crate) fn encrypt(
    key: &[u8; 32],
    key_id: KeyId,
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Vec<u8> {
    let header = header(VERSION_SYMMETRIC, key_id);
    let nonce = random_bytes::<NONCE_LEN>();
    let aad = binding.aad(&header);
    let cipher = XChaCha20Poly1305::new(key.into());
    // Encryption with a valid key and in-memory buffers cannot fail; an error here would
    // mean a broken AEAD implementation, so it yields an empty ciphertext that no reader
    // will ever accept rather than a panic.
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The key id an envelope claims, without decrypting it.
pub(crate) fn key_id_of(envelope: &[u8]) -> Result<KeyId, CryptoError> {
    parse_header(envelope, VERSION_SYMMETRIC).map(|(id, _)| id)
}

pub(crate) fn decrypt(
    key: &[u8; 32],
    binding: &Binding<'_>,
    envelope: &[u8],
) -> Result<Plaintext, CryptoError> {
    let (_, rest) = parse_header(envelope, VERSION_SYMMETRIC)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let aad = binding.aad(&envelope[..HEADER_LEN]);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map(Plaintext::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// The nonce of a symmetric envelope (for tests of nonce uniqueness).
#[cfg(test)]
pub(crate) fn nonce_of(envelope: &[u8]) -> &[u8] {
    &envelope[HEADER_LEN..HEADER_LEN + NONCE_LEN]
}
