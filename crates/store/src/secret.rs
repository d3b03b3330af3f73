//! Secret-bearing columns as types of their own, so a lookup hash cannot be passed where
//! a ciphertext is meant, and no record's `Debug` prints their bytes.
//!
//! None of these is a plaintext secret: the crypto layer produced each (a hash, a
//! wrapped key, an AEAD ciphertext). Equality here is not constant-time; the service
//! compares lookup hashes with the crypto crate's constant-time comparison.

macro_rules! stored_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Vec<u8>);

        impl $name {
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            pub fn into_bytes(self) -> Vec<u8> {
                self.0
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({} bytes)"), self.0.len())
            }
        }
    };
}

stored_bytes!(
    /// SHA-256 of a secret that rows are found by: an API key's secret, a connect
    /// session's state, a connect link, a link's browser-binding cookie.
    LookupHash
);
stored_bytes!(
    /// A vault data key wrapped under a key-encryption key (a password's, an API key's
    /// or the master key's).
    KeySlot
);
stored_bytes!(
    /// An AEAD ciphertext or a sealed box: a token set, a client secret, a sealing
    /// private key, a connect session's secrets, a link's sealed URL.
    Ciphertext
);
stored_bytes!(
    /// What a password is checked against (never the Argon2 output itself).
    PasswordVerifier
);
