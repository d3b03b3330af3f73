//! Start-up of the real binary: refusals that leave nothing behind, and the master key
//! check.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");
const SETTINGS: [&str; 12] = [
    "TOKENWARDEN_LISTEN",
    "TOKENWARDEN_DATABASE_URL",
    "TOKENWARDEN_DATABASE_URL_FILE",
    "TOKENWARDEN_PUBLIC_URL",
    "TOKENWARDEN_REFRESH_SKEW_SECONDS",
    "TOKENWARDEN_RETURN_ORIGINS",
    "TOKENWARDEN_MASTER_KEY",
    "TOKENWARDEN_MASTER_KEY_FILE",
    "TOKENWARDEN_SIGNUP",
    "TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS",
    "TOKENWARDEN_LOG",
    "RUST_LOG",
];
const KEY_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEY_B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

/// A port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `tokenwarden serve` in `dir` with only the given settings (and a free port).
fn serve(dir: &Path, port: u16, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.arg("serve")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in SETTINGS {
        cmd.env_remove(name);
    }
    cmd.env("TOKENWARDEN_LISTEN", format!("127.0.0.1:{port}"));
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// Runs a start that must be refused: it exits by itself, non-zero, within 10 s.
async fn refused(dir: &Path, env: &[(&str, &str)]) -> String {
    let child = serve(dir, free_port(), env).spawn().unwrap();
    let output: Output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{env:?}: the server started instead of refusing"))
        .unwrap();
    assert!(!output.status.success(), "{env:?} exited successfully");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts the server and waits until `/readyz` answers 200 (up to 10 s).
async fn started(dir: &Path, env: &[(&str, &str)]) -> Child {
    let port = free_port();
    let mut child = serve(dir, port, env).spawn().unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "the server exited with {status}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if let Ok(r) = client.get(&url).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
    panic!("the server was not ready within 10 s");
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn serve_refuses_an_ambiguous_or_unsupported_database_url_and_creates_no_file() {
    assert!(!Path::new("/nonexistent-dir").exists());
    for url in [
        "sqlite:tw.db",
        "sqlite://",
        "sqlite://x.db?mode=rwc",
        "postgres://localhost/x",
        "sqlite:///nonexistent-dir/x.db",
        "sqlite://:memory:",
        "tw.db",
    ] {
        let dir = tempfile::tempdir().unwrap();

        let stderr = refused(dir.path(), &[("TOKENWARDEN_DATABASE_URL", url)]).await;

        assert!(
            stderr.contains("TOKENWARDEN_DATABASE_URL"),
            "{url}: the message does not name the setting: {stderr}"
        );
        assert_eq!(
            entries(dir.path()),
            Vec::<String>::new(),
            "{url} left files"
        );
    }
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[tokio::test]
async fn serve_refuses_a_postgres_url_without_showing_its_password() {
    for url in [
        "postgres://tw:s3cret-pw@127.0.0.1:5432/tw?no_such_option=1",
        "postgres://tw:s3cret-pw@127.0.0.1:5432/",
        "postgres://tw:s3cret-pw@127.0.0.1:5432/tw?sslmode=verify-full",
        // Nothing listens on port 1: the connection itself fails.
        "postgres://tw:s3cret-pw@127.0.0.1:1/tw?connect_timeout=5",
    ] {
        let dir = tempfile::tempdir().unwrap();

        let stderr = refused(dir.path(), &[("TOKENWARDEN_DATABASE_URL", url)]).await;

        assert!(
            stderr.contains("TOKENWARDEN_DATABASE_URL") || stderr.contains("database"),
            "{url}: {stderr}"
        );
        assert!(
            !stderr.contains("s3cret-pw"),
            "{url}: the password leaked: {stderr}"
        );
    }
}

#[tokio::test]
async fn serve_refuses_both_forms_of_the_master_key_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, KEY_A).unwrap();

    let stderr = refused(
        dir.path(),
        &[
            ("TOKENWARDEN_DATABASE_URL", "sqlite://tw.db"),
            ("TOKENWARDEN_MASTER_KEY", KEY_A),
            ("TOKENWARDEN_MASTER_KEY_FILE", key_file.to_str().unwrap()),
        ],
    )
    .await;

    assert!(stderr.contains("TOKENWARDEN_MASTER_KEY "), "{stderr}");
    assert!(stderr.contains("TOKENWARDEN_MASTER_KEY_FILE"), "{stderr}");
    assert!(!stderr.contains(KEY_A), "the key is echoed: {stderr}");
    assert_eq!(entries(dir.path()), vec!["master.key".to_owned()]);
}

#[tokio::test]
async fn serve_refuses_a_malformed_master_key_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = "s3cr3t-but-not-32-bytes";

    let stderr = refused(
        dir.path(),
        &[
            ("TOKENWARDEN_DATABASE_URL", "sqlite://tw.db"),
            ("TOKENWARDEN_MASTER_KEY", malformed),
        ],
    )
    .await;

    assert!(stderr.contains("TOKENWARDEN_MASTER_KEY"), "{stderr}");
    assert!(!stderr.contains(malformed), "the key is echoed: {stderr}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn serve_refuses_a_database_set_up_with_another_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let with_key = |key: &'static str| {
        [
            ("TOKENWARDEN_DATABASE_URL", "sqlite://tw.db"),
            ("TOKENWARDEN_MASTER_KEY", key),
        ]
    };
    let mut first = started(dir.path(), &with_key(KEY_A)).await;
    first.kill().await.unwrap();

    let stderr = refused(dir.path(), &with_key(KEY_B)).await;

    assert!(
        stderr.contains("the configured master key is not the one this database was set up with"),
        "{stderr}"
    );
    assert!(stderr.contains("TOKENWARDEN_MASTER_KEY"), "{stderr}");
    assert!(
        !stderr.contains(KEY_A) && !stderr.contains(KEY_B),
        "{stderr}"
    );
    // Nothing was changed: the original key still starts it.
    let mut again = started(dir.path(), &with_key(KEY_A)).await;
    again.kill().await.unwrap();
}

/// `tokenwarden migrate` against `url`; its stdout, after checking it succeeded.
async fn migrate(dir: &Path, url: &str) -> String {
    let mut cmd = Command::new(BINARY);
    cmd.arg("migrate")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SETTINGS {
        cmd.env_remove(name);
    }
    let output = cmd
        .env("TOKENWARDEN_DATABASE_URL", url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_then_reports_it_current() {
    let database = tokenwarden_testing::TestDatabase::from_env().await;
    let dir = tempfile::tempdir().unwrap();

    let first = migrate(dir.path(), database.url()).await;
    let second = migrate(dir.path(), database.url()).await;

    let expected = match database.backend() {
        tokenwarden_testing::Backend::Sqlite => {
            "applied 0001_foundation\napplied 0002_oauth\napplied 0003_links_audit_chain\napplied 0004_connection_lifecycle\napplied 0005_webhooks\n"
        }
        tokenwarden_testing::Backend::Postgres | tokenwarden_testing::Backend::Mysql => {
            "applied V1__initial\napplied V2__connection_lifecycle\napplied V3__webhooks\n"
        }
    };
    assert_eq!(first, expected);
    assert_eq!(second, "the schema is up to date; no migration applied\n");
    // A server then starts on the migrated database without migrating again.
    let app = tokenwarden_testing::spawn_app_with(tokenwarden_testing::SpawnOptions {
        database: Some(std::sync::Arc::new(database)),
        ..Default::default()
    })
    .await;
    app.vault("migrated@example.com").await;
}
