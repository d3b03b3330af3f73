//! The crate's integration tests: interoperability with the Standard Webhooks reference
//! libraries, and the sender against a real HTTP server in the test process. One binary,
//! so the tests link once.

// Helpers outside `#[test]` functions fail the test the same way the tests do.
#![expect(clippy::unwrap_used, reason = "a failed test helper fails the test")]

mod sender;
mod vectors;
