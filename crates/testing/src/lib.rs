//! Test support: [`spawn_app`] builds the real application on 127.0.0.1:0 against a
//! fresh SQLite file in a temporary directory, with a clock the test can move.
//! Failing loudly is the point of test helpers, so they panic on setup errors.
#![expect(
    clippy::expect_used,
    reason = "test support fails loudly on broken setup"
)]

mod app;
mod clock;

pub use app::{SpawnOptions, TestApp, TestVault, spawn_app, spawn_app_with};
pub use clock::ManualClock;
