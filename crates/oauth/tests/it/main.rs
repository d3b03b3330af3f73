//! Integration tests of tokenwarden-oauth against a real HTTP server in the test
//! process (see `support`). One binary, so the crate's tests link once.

// Helpers outside `#[test]` functions fail the test the same way the tests do.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failed test helper fails the test"
)]

mod discovery;
mod http_policy;
mod id_token;
mod support;
mod token_endpoint;
mod token_faults;
mod token_fixtures;
