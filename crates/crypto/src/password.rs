//! Account passwords: one Argon2id run yields both the stored verifier and the slot KEK.
//!
//! Argon2id with the OWASP Password Storage Cheat Sheet's first recommended setting
//! (m = 19 MiB, t = 2, p = 1). Its 32-byte output is never stored; HKDF expands it under
//! two labels into the verifier (stored, compared in constant time) and the KEK of the
//! account's vault slots (never stored). One slow derivation per login, not two.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokenwarden_domain::Password;
use zeroize::Zeroizing;

use crate::{CryptoError, Kek, random_bytes};

/// Argon2id parameters and salt, stored beside the verifier as `m=..,t=..,p=..`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordKdf {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: [u8; 16],
}

/// The stored verifier of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordVerifier(pub [u8; 32]);

/// What a password derives to.
#[derive(Debug)]
pub struct PasswordMaterial {
    pub verifier: PasswordVerifier,
    pub kek: Kek,
}

impl PasswordKdf {
    /// OWASP: m = 19456 KiB, t = 2, p = 1.
    pub const M_COST: u32 = 19_456;
    pub const T_COST: u32 = 2;
    pub const P_COST: u32 = 1;
    /// Refuse stored parameters beyond this memory (a tampered row must not make the
    /// server allocate gigabytes).
    const MAX_M_COST: u32 = 1 << 20;

    /// Fresh parameters with a random salt, for a new password.
    pub fn new_random() -> Self {
        Self {
            m_cost: Self::M_COST,
            t_cost: Self::T_COST,
            p_cost: Self::P_COST,
            salt: random_bytes(),
        }
    }

    /// Reads stored parameters.
    pub fn from_stored(params: &str, salt: &[u8]) -> Result<Self, CryptoError> {
        let mut m = None;
        let mut t = None;
        let mut p = None;
        for part in params.split(',') {
            let (k, v) = part.split_once('=').ok_or(CryptoError::InvalidKey)?;
            let v: u32 = v.parse().map_err(|_| CryptoError::InvalidKey)?;
            match k {
                "m" => m = Some(v),
                "t" => t = Some(v),
                "p" => p = Some(v),
                _ => return Err(CryptoError::InvalidKey),
            }
        }
        let (Some(m_cost), Some(t_cost), Some(p_cost)) = (m, t, p) else {
            return Err(CryptoError::InvalidKey);
        };
        if m_cost > Self::MAX_M_COST || t_cost > 64 || p_cost > 16 {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Self {
            m_cost,
            t_cost,
            p_cost,
            salt: salt.try_into().map_err(|_| CryptoError::InvalidKey)?,
        })
    }

    pub fn params_string(&self) -> String {
        format!("m={},t={},p={}", self.m_cost, self.t_cost, self.p_cost)
    }

    pub fn salt(&self) -> &[u8; 16] {
        &self.salt
    }

    /// Runs Argon2id (tens of milliseconds: call it off the async executor).
    pub fn derive(&self, password: &Password) -> Result<PasswordMaterial, CryptoError> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| CryptoError::InvalidKey)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut stretched = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(
                password.expose_secret().as_bytes(),
                &self.salt,
                &mut *stretched,
            )
            .map_err(|_| CryptoError::InvalidKey)?;
        let hk = Hkdf::<Sha256>::from_prk(&*stretched).map_err(|_| CryptoError::InvalidKey)?;
        let mut verifier = [0u8; 32];
        let mut kek = Zeroizing::new([0u8; 32]);
        hk.expand(b"tokenwarden/password/verifier/v1", &mut verifier)
            .map_err(|_| CryptoError::InvalidKey)?;
        hk.expand(b"tokenwarden/password/slot-kek/v1", &mut *kek)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(PasswordMaterial {
            verifier: PasswordVerifier(verifier),
            kek: Kek::from_bytes(*kek),
        })
    }
}

impl fmt::Debug for PasswordKdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordKdf({})", self.params_string())
    }
}

impl PasswordVerifier {
    /// Constant-time comparison with the stored verifier.
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored.len() == 32 && self.0.ct_eq(stored).unwrap_u8() == 1
    }
}

impl fmt::Debug for PasswordVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordVerifier(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    #[test]
    fn the_same_password_and_salt_derive_the_same_verifier() {
        let kdf = PasswordKdf::new_random();
        let a = kdf.derive(&pw("correct horse")).unwrap();
        let stored = PasswordKdf::from_stored(&kdf.params_string(), kdf.salt()).unwrap();
        let b = stored.derive(&pw("correct horse")).unwrap();
        assert!(a.verifier.matches(&b.verifier.0));
        let c = stored.derive(&pw("correct horsf")).unwrap();
        assert!(!a.verifier.matches(&c.verifier.0));
    }

    #[test]
    fn stored_parameters_are_checked() {
        assert!(PasswordKdf::from_stored("m=19456,t=2,p=1", &[0; 16]).is_ok());
        assert!(PasswordKdf::from_stored("m=19456,t=2", &[0; 16]).is_err());
        assert!(PasswordKdf::from_stored("m=99999999,t=2,p=1", &[0; 16]).is_err());
        assert!(PasswordKdf::from_stored("m=19456,t=2,p=1", &[0; 15]).is_err());
    }
}
