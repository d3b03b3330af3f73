//! Secret newtypes: tokens, codes, state and nonce, whose `Debug` never shows the value.
//!
//! Each kind of secret has its own type so that a refresh token cannot be passed where
//! an access token is expected. The value sits in a [`SecretString`] (zeroized on drop)
//! and is read only through `expose_secret()` at the point of use.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use secrecy::{ExposeSecret as _, SecretString};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value received from a provider or loaded from storage.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The value itself; call only where it leaves the process.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// The value as a plain `SecretString`, moved rather than copied (an answer
            /// that hands the value to its owner).
            pub fn into_secret(self) -> SecretString {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An access token (RFC 6749 §1.4).
    AccessToken
);
secret_type!(
    /// A refresh token (RFC 6749 §1.5).
    RefreshToken
);
secret_type!(
    /// An OpenID Connect id_token (OIDC Core §2), a signed JWT about the user.
    IdToken
);
secret_type!(
    /// An authorization code from the redirect (RFC 6749 §4.1.2). Single use.
    AuthorizationCode
);
secret_type!(
    /// The `state` value binding a redirect to the session that started it
    /// (RFC 6749 §10.12, RFC 9700 §4.7).
    State
);
secret_type!(
    /// The OIDC `nonce` binding an id_token to the flow that asked for it
    /// (OIDC Core §3.1.2.1).
    Nonce
);

/// 32 random bytes, base64url without padding: 256 bits, well above the 128 bits
/// RFC 9700 §2.1 asks of `state`, and URL-safe without escaping.
pub(crate) fn random_token(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

impl State {
    /// A fresh state for one authorization request.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self::new(random_token(rng))
    }
}

impl Nonce {
    /// A fresh nonce for one authorization request.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self::new(random_token(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_every_secret_type_is_redacted() {
        let printed = format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            AccessToken::new("s3cret-a"),
            RefreshToken::new("s3cret-r"),
            IdToken::new("s3cret-i"),
            AuthorizationCode::new("s3cret-c"),
            State::new("s3cret-s"),
            Nonce::new("s3cret-n"),
        );
        assert!(!printed.contains("s3cret"), "{printed}");
        assert_eq!(
            printed,
            "AccessToken([redacted]) RefreshToken([redacted]) IdToken([redacted]) \
             AuthorizationCode([redacted]) State([redacted]) Nonce([redacted])"
        );
    }

    #[test]
    fn generated_state_has_256_bits_in_43_url_safe_characters() {
        let mut rng = rand::thread_rng();
        let a = State::generate(&mut rng);
        let b = State::generate(&mut rng);
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
