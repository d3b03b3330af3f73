//! The one source of randomness for key material: the operating system's CSPRNG.

use rand::RngCore;
use rand::rngs::OsRng;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}
