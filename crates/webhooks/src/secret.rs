//! An endpoint's signing secret, in the Standard Webhooks text form: `whsec_` followed
//! by the standard base64 of 24 to 64 random bytes (the spec's "Signature scheme" table).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// The prefix that lets people and secret scanners recognise a symmetric webhook secret.
pub const PREFIX: &str = "whsec_";
/// Fewest key bytes accepted (192 bits), the spec's lower bound.
pub const MIN_BYTES: usize = 24;
/// Most key bytes accepted (512 bits), the spec's upper bound.
pub const MAX_BYTES: usize = 64;
/// Bytes in a secret this crate generates.
pub const GENERATED_BYTES: usize = 32;

/// Why a text or byte string is not a webhook secret. Never quotes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a webhook secret is `whsec_` followed by standard base64")]
    NotBase64,
    #[error("a webhook secret must hold at least 24 bytes")]
    TooShort,
    #[error("a webhook secret must hold at most 64 bytes")]
    TooLong,
}

/// The HMAC key of one endpoint. Zeroized on drop, redacted in `Debug`, and not `Clone`:
/// each holder decrypts its own copy and drops it after signing.
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl WebhookSecret {
    /// A new secret of 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; GENERATED_BYTES]);
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads the text form, `whsec_` + standard base64 (padded, as the reference
    /// libraries decode it).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?,
        );
        Self::from_bytes(&bytes)
    }

    /// Rebuilds a secret from its raw bytes (as decrypted from storage).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < MIN_BYTES {
            return Err(SecretError::TooShort);
        }
        if bytes.len() > MAX_BYTES {
            return Err(SecretError::TooLong);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// The text form to show the endpoint's owner once.
    pub fn as_text(&self) -> SecretString {
        // Sized up front so that no reallocation leaves an unzeroized copy behind.
        let mut text = String::with_capacity(PREFIX.len() + self.0.len().div_ceil(3) * 4);
        text.push_str(PREFIX);
        STANDARD.encode_string(self.0.as_slice(), &mut text);
        SecretString::from(text)
    }

    /// The HMAC key.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A copy of the raw bytes, for the caller to encrypt before storing.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_generated_secret_reads_back_from_its_text_form() {
        let secret = WebhookSecret::generate();
        let text = secret.as_text();
        assert!(text.expose_secret().starts_with("whsec_"));
        assert_eq!(text.expose_secret().len(), "whsec_".len() + 44);
        let again = WebhookSecret::parse(text.expose_secret()).unwrap();
        assert_eq!(again.bytes(), secret.bytes());
        assert_eq!(secret.bytes().len(), 32);
    }

    #[test]
    fn two_generated_secrets_differ() {
        assert_ne!(
            WebhookSecret::generate().bytes(),
            WebhookSecret::generate().bytes()
        );
    }

    #[test]
    fn the_reference_libraries_24_byte_secret_parses() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(secret.bytes().len(), 24);
        assert_eq!(
            secret.as_text().expose_secret(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        );
    }

    #[test]
    fn text_that_is_not_a_secret_is_refused_with_the_reason() {
        let cases = [
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            (
                "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            ("whsec_", SecretError::TooShort),
            ("whsec_not base64!", SecretError::NotBase64),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                SecretError::NotBase64,
            ),
            // 18 bytes: well-formed, too weak.
            ("whsec_dGVzdC1rZXktYnl0ZXMxMjM0", SecretError::TooShort),
        ];
        for (text, expected) in cases {
            assert_eq!(WebhookSecret::parse(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn raw_bytes_round_trip_within_the_allowed_lengths() {
        assert_eq!(
            WebhookSecret::from_bytes(&[7; 23]).unwrap_err(),
            SecretError::TooShort
        );
        assert_eq!(
            WebhookSecret::from_bytes(&[7; 65]).unwrap_err(),
            SecretError::TooLong
        );
        for len in [24, 32, 64] {
            let secret = WebhookSecret::from_bytes(&vec![7; len]).unwrap();
            assert_eq!(secret.to_bytes().as_slice(), vec![7; len].as_slice());
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret([redacted])");
        let err = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La").unwrap_err();
        assert!(!err.to_string().contains("MfKQ9r8"));
    }
}
