//! Decrypted bytes, as every decryption returns them.

use std::fmt;

use zeroize::Zeroizing;

/// Decrypted bytes: zeroized on drop, redacted in `Debug`, not `Clone`.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes, [redacted])", self.0.len())
    }
}
