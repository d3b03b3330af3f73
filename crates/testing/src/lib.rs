//! Test support: [`spawn_app`] builds the real application on 127.0.0.1:0 against a
//! fresh database (a temporary SQLite file, or a new database on the server
//! `TOKENWARDEN_TEST_DATABASE_URL` names), with a clock the test can move.
//! Failing loudly is the point of test helpers, so they panic on setup errors.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test support fails loudly on broken setup"
)]

mod app;
mod clock;
mod database;

pub use app::{SpawnOptions, TestApp, TestVault, spawn_app, spawn_app_with};
pub use clock::ManualClock;
pub use database::{Backend, DATABASE_URL_ENV, TestDatabase};
