//! `tokenwarden copy`: a whole database moved as stored opens with the same keys.

use std::process::Command;
use std::sync::Arc;

use reqwest::StatusCode;
use tokenwarden_testing::{SpawnOptions, TestDatabase, spawn_app_with};

use crate::oauth_support::{SCOPES, oauth_env, oauth_env_with, provider_config};

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

    // The copy moves with the server key (it encrypts the webhook secrets), as the
    // operator's key file moves with the database.
    let copy = spawn_app_with(SpawnOptions {
        database: Some(target),
        data_dir: Some(env.app.dir.clone()),
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

/// The URL of a server backend the CI requires, or `None` (with a note) when it is
/// neither set nor required.
fn backend_url(var: &str, name: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var("TOKENWARDEN_TEST_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                !required.split(',').any(|b| b.trim() == name),
                "TOKENWARDEN_TEST_REQUIRE_BACKENDS requires {name}, but {var} is not set"
            );
            eprintln!("copy: {var} is not set; the round trip through {name} is skipped");
            None
        }
    }
}

/// SQLite → PostgreSQL → MySQL → SQLite: after three copies the vault still opens with
/// its keys and password, its tokens read back, refresh still works and the audit log
/// verifies (each copy checks the chain it wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_survives_sqlite_to_postgres_to_mysql_to_sqlite() {
    let (Some(pg), Some(my)) = (
        backend_url("TOKENWARDEN_TEST_POSTGRES_URL", "postgres"),
        backend_url("TOKENWARDEN_TEST_MYSQL_URL", "mysql"),
    ) else {
        return;
    };
    let env = oauth_env_with(
        SpawnOptions {
            database: Some(Arc::new(TestDatabase::sqlite_in(Arc::new(
                tempfile::tempdir().unwrap(),
            )))),
            ..SpawnOptions::default()
        },
        provider_config(),
        &SCOPES,
    )
    .await;
    env.connect("c1").await;
    env.connect("c2").await;
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    let stages = [
        env.app.database.clone(),
        Arc::new(TestDatabase::create(&pg).await),
        Arc::new(TestDatabase::create(&my).await),
        Arc::new(TestDatabase::sqlite_in(Arc::new(
            tempfile::tempdir().unwrap(),
        ))),
    ];
    for pair in stages.windows(2) {
        let (ok, text) = run_copy(pair[0].url(), pair[1].url());
        assert!(
            ok,
            "{:?} -> {:?}: {text}",
            pair[0].backend(),
            pair[1].backend()
        );
        assert!(text.contains("connections: 2 rows"), "{text}");
        assert!(text.contains("the copy's audit log verifies"), "{text}");
    }

    let last = spawn_app_with(SpawnOptions {
        database: Some(stages[3].clone()),
        data_dir: Some(env.app.dir.clone()),
        ..SpawnOptions::default()
    })
    .await;
    let read = |path: &'static str| {
        last.client
            .get(last.url(path))
            .bearer_auth(&env.read_key)
            .send()
    };
    let again: serde_json::Value = read("/v1/connections/c1/token")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["access_token"], token["access_token"]);
    let forced = read("/v1/connections/c2/token?force_refresh=true")
        .await
        .unwrap();
    assert_eq!(forced.status(), StatusCode::OK);
    let forced: serde_json::Value = forced.json().await.unwrap();
    assert_eq!(forced["refreshed"], true);
    // The owner's password still opens the vault (its slot moved byte for byte).
    let vaults = last
        .client
        .get(last.url("/v1/vaults"))
        .basic_auth(&env.vault.email, Some(&env.vault.password))
        .send()
        .await
        .unwrap();
    assert_eq!(vaults.status(), StatusCode::OK);
}
