//! The fuzz targets, one module each, run as bounded property tests (see README.md).
//!
//! The modules are `cfg(test)` so that clippy's `allow-*-in-tests` settings cover the
//! harness too, not only the `#[test]` functions.

#[cfg(test)]
mod api_key;
#[cfg(test)]
mod callback_query;
#[cfg(test)]
mod catalog;
#[cfg(test)]
mod ciphertext;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod proxy_target;
#[cfg(test)]
mod token_response;
