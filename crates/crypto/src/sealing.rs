//! The vault's sealing key pair (X25519), for tokens that arrive with no key holder
//! present. HPKE base mode (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305; the associated data is the same row binding as everywhere else.

use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_core_09::{OsRng, UnwrapErr};
use zeroize::Zeroizing;

use crate::envelope::{self, KeyId, VERSION_SEALED};
use crate::{Binding, CryptoError, Plaintext};

type SealKem = X25519HkdfSha256;
const INFO: &[u8] = b"tokenwarden/seal/v1";
const ENCAPPED_LEN: usize = 32;

/// The public half, stored in the clear.
#[derive(Clone)]
pub struct SealingPublicKey {
    id: KeyId,
    key: <SealKem as Kem>::PublicKey,
}

/// The private half; stored only encrypted under the vault DEK.
pub struct SealingPrivateKey {
    id: KeyId,
    key: <SealKem as Kem>::PrivateKey,
}

impl SealingPrivateKey {
    pub fn generate(id: KeyId) -> (Self, SealingPublicKey) {
        let (sk, pk) = SealKem::gen_keypair(&mut UnwrapErr(OsRng));
        (Self { id, key: sk }, SealingPublicKey { id, key: pk })
    }

    pub fn public_key(&self) -> SealingPublicKey {
        SealingPublicKey {
            id: self.id,
            key: SealKem::sk_to_pk(&self.key),
        }
    }

    /// The raw private key, to be encrypted under the DEK at once.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.to_bytes().to_vec())
    }

    pub fn from_bytes(id: KeyId, bytes: &[u8]) -> Result<Self, CryptoError> {
        let key =
            <SealKem as Kem>::PrivateKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { id, key })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Opens what [`SealingPublicKey::seal`] sealed for this key and binding.
    pub fn open(&self, binding: &Binding<'_>, sealed: &[u8]) -> Result<Plaintext, CryptoError> {
        let (id, rest) = envelope::parse_header(sealed, VERSION_SEALED)?;
        if id != self.id || rest.len() < ENCAPPED_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (encapped, ciphertext) = rest.split_at(ENCAPPED_LEN);
        let encapped = <SealKem as Kem>::EncappedKey::from_bytes(encapped)
            .map_err(|_| CryptoError::Malformed)?;
        let aad = binding.aad(&sealed[..envelope::HEADER_LEN]);
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, SealKem>(
            &OpModeR::Base,
            &self.key,
            &encapped,
            INFO,
            ciphertext,
            &aad,
        )
        .map(Plaintext::new)
        .map_err(|_| CryptoError::Decrypt)
    }
}

impl fmt::Debug for SealingPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingPrivateKey({:?}, [redacted])", self.id)
    }
}

impl SealingPublicKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    pub fn from_bytes(id: KeyId, bytes: &[u8]) -> Result<Self, CryptoError> {
        let key =
            <SealKem as Kem>::PublicKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { id, key })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Seals `plaintext` so only the holder of the private key can open it.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let header = envelope::header(VERSION_SEALED, self.id);
        let aad = binding.aad(&header);
        let (encapped, ciphertext) =
            hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, SealKem, _>(
                &OpModeS::Base,
                &self.key,
                INFO,
                plaintext,
                &aad,
                &mut UnwrapErr(OsRng),
            )
            .map_err(|_| CryptoError::InvalidKey)?;
        let mut out = Vec::with_capacity(header.len() + ENCAPPED_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&encapped.to_bytes());
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }
}

impl fmt::Debug for SealingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingPublicKey({:?})", self.id)
    }
}
