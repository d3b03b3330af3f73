//! `tokenwarden copy`: a whole database moved as stored opens with the same keys.

use std::process::Command;
use std::sync::Arc;

use reqwest::StatusCode;
use tokenwarden_testing::{SpawnOptions, TestDatabase, spawn_app_with};

use crate::oauth_support::oauth_env;

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");

fn run_copy(from: &str, to: &str) -> (bool, String) {
    let out = Command::new(BINARY)
        .args(["copy", "--from", from, "--to", to])
        .env_remove("TOKENWARDEN_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_copy_opens_with_the_same_keys_and_refuses_a_non_empty_target() {
    let env = oauth_env().await;
    env.connect("c1").await;
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    let from = env.app.database.url().to_owned();
    // A second database on the suite's backend.
    let target = Arc::new(TestDatabase::from_env().await);
    let to = target.url().to_owned();

    let (ok, text) = run_copy(&from, &to);
    assert!(ok, "{text}");
    assert!(text.contains("connections: 1 rows"), "{text}");
    assert!(text.contains("the copy's audit log verifies"), "{text}");

    // Into a database that already holds data: refused, nothing written.
    let (ok, text) = run_copy(&from, &to);
    assert!(!ok);
    assert!(text.contains("not empty"), "{text}");

    let copy = spawn_app_with(SpawnOptions {
        database: Some(target),
        ..SpawnOptions::default()
    })
    .await;
    let again = copy
        .client
        .get(copy.url("/v1/connections/c1/token"))
        .bearer_auth(&env.read_key)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["access_token"], token["access_token"]);
}
