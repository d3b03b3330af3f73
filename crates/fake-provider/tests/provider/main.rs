//! Integration tests: the fake provider over real HTTP, driven with reqwest.
//!
//! The modules are `cfg(test)` so that clippy's `allow-*-in-tests` settings
//! cover the helpers too, not only the `#[test]` functions.

#[cfg(test)]
mod client_auth;
#[cfg(test)]
mod clock;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod endpoints;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod flow;
#[cfg(test)]
mod pkce;
#[cfg(test)]
mod quirks;
#[cfg(test)]
mod support;
