//! PKCE (RFC 7636): the code verifier and its S256 challenge.
//!
//! Only `S256` is implemented: `plain` protects nothing once the authorization request
//! leaks, and RFC 9700 §2.1.1 says clients SHOULD use S256.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::secret::random_token;

/// A PKCE code verifier (RFC 7636 §4.1).
///
/// Deliberately not `Clone`: one verifier belongs to exactly one flow, and a copy lying
/// around is a copy that can leak.
pub struct PkceVerifier(SecretString);

/// The S256 code challenge derived from a verifier (RFC 7636 §4.2). Not a secret: it
/// travels in the authorization URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkceChallenge(String);

/// Why a stored verifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// RFC 7636 §4.1: 43 to 128 characters.
    #[error("a PKCE code verifier must be 43 to 128 characters long")]
    Length,
    /// RFC 7636 §4.1: `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` only.
    #[error("a PKCE code verifier may contain only unreserved characters (A-Z a-z 0-9 - . _ ~)")]
    Charset,
}

impl PkceVerifier {
    /// A fresh verifier: 32 random bytes base64url-encoded, 43 characters, as RFC 7636
    /// §4.1 recommends.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self(SecretString::from(random_token(rng)))
    }

    /// Rebuilds a verifier kept between the authorization request and the callback.
    pub fn parse(value: String) -> Result<Self, PkceError> {
        if !(43..=128).contains(&value.len()) {
            return Err(PkceError::Length);
        }
        if !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(PkceError::Charset);
        }
        Ok(Self(SecretString::from(value)))
    }

    /// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`, RFC 7636 §4.2.
    pub fn challenge(&self) -> PkceChallenge {
        let digest = Sha256::digest(self.0.expose_secret().as_bytes());
        PkceChallenge(URL_SAFE_NO_PAD.encode(digest))
    }

    /// The verifier itself, for the token request (RFC 7636 §4.5) or for storage.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

impl PkceChallenge {
    /// The challenge as sent in `code_challenge`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Always `S256`, the only method this crate sends.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_the_rfc_7636_appendix_b_example() -> Result<(), PkceError> {
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into())?;
        assert_eq!(
            verifier.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        Ok(())
    }

    #[test]
    fn generated_verifier_is_43_unreserved_characters_and_round_trips() -> Result<(), PkceError> {
        let verifier = PkceVerifier::generate(&mut rand::thread_rng());
        assert_eq!(verifier.expose_secret().len(), 43);
        let again = PkceVerifier::parse(verifier.expose_secret().to_owned())?;
        assert_eq!(again.challenge(), verifier.challenge());
        Ok(())
    }

    #[test]
    fn verifier_outside_43_to_128_unreserved_characters_is_refused() {
        assert_eq!(
            PkceVerifier::parse("a".repeat(42)).err(),
            Some(PkceError::Length)
        );
        assert_eq!(
            PkceVerifier::parse("a".repeat(129)).err(),
            Some(PkceError::Length)
        );
        assert!(PkceVerifier::parse("a".repeat(128)).is_ok());
        let with_space = format!("{} b", "a".repeat(42));
        assert_eq!(
            PkceVerifier::parse(with_space).err(),
            Some(PkceError::Charset)
        );
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(format!("{verifier:?}"), "Ok(PkceVerifier([redacted]))");
    }
}
