//! The MySQL store against a real server: every trait method, each test on a fresh
//! database (`tw_<random>`, dropped afterwards). Set `TOKENWARDEN_TEST_MYSQL_URL` (for
//! example `mysql://root@127.0.0.1:3306/test`) to run them; without it they are skipped
//! with a note, unless `TOKENWARDEN_TEST_REQUIRE_BACKENDS` names `mysql`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

mod audit;
mod connect;
mod connections;
mod copy;
mod fixtures;
mod keys;
mod migrate;
mod refresh;
