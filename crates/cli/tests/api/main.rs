//! Integration tests of the HTTP API (the "foundation" issue): the real server on a
//! random port against a fresh SQLite file, driven with reqwest; start-up refusals
//! through the real binary.
//!
//! The modules are `cfg(test)` so that clippy's `allow-*-in-tests` settings cover the
//! helpers too, not only the `#[test]` functions.

#[cfg(test)]
mod accounts;
#[cfg(test)]
mod api_keys;
#[cfg(test)]
mod audit;
#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod helpers;
#[cfg(test)]
mod operations;
#[cfg(test)]
mod startup;
#[cfg(test)]
mod stolen_database;
#[cfg(test)]
mod unauthorized;
#[cfg(test)]
mod vaults;
