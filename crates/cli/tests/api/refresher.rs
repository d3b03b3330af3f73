//! `tokenwarden refresher` as a real process against a real `tokenwarden serve` process:
//! it refreshes a zero-knowledge vault's connection when the server says it is due,
//! reports it on its own /healthz and /metrics, stops cleanly on SIGTERM, never prints a
//! token, and refuses to start with a key that cannot refresh.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{FakeProvider, Quirks};
use tokenwarden_testing::TestDatabase;
use tokio::process::{Child, Command};

use crate::helpers::{Auth, secret_of, utc};
use crate::oauth_support::{
    Keys, SCOPES, Server, browser, fetch, follow_authorization, provider_config, role_key, send,
};
use crate::processes::{Process, set_up};

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");
/// The access token's lifetime at connect: short, so the refresh comes due soon.
const TOKEN_SECS: i64 = 120;
/// Settings of the parent environment that must not leak into the children.
const INHERITED: [&str; 10] = [
    "TOKENWARDEN_URL",
    "TOKENWARDEN_API_KEY",
    "TOKENWARDEN_API_KEY_FILE",
    "TOKENWARDEN_REFRESHER_INTERVAL",
    "TOKENWARDEN_REFRESHER_LOOKAHEAD",
    "TOKENWARDEN_REFRESHER_CONCURRENCY",
    "TOKENWARDEN_REFRESHER_LISTEN",
    "TOKENWARDEN_LOG",
    "RUST_LOG",
    "NO_COLOR",
];

/// A `tokenwarden refresher` child with its output in files.
struct Refresher {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Refresher {
    /// Starts the refresher against `server` with the key in a file, polling every
    /// second and looking 10 minutes ahead (past the token's lifetime), its own
    /// endpoints on a free port.
    fn start(dir: &Path, name: &str, server: &str, key: &str) -> Self {
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&key_file, format!("{key}\n")).unwrap();
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let mut cmd = Command::new(BINARY);
        cmd.args([
            "refresher",
            "--interval",
            "1",
            "--lookahead",
            "600",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .kill_on_drop(true);
        for setting in INHERITED {
            cmd.env_remove(setting);
        }
        cmd.env("TOKENWARDEN_URL", server)
            .env("TOKENWARDEN_API_KEY_FILE", &key_file)
            .env("TOKENWARDEN_LOG", "debug")
            .env("NO_COLOR", "1");
        Self {
            child: cmd.spawn().unwrap(),
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        let mut all = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        all.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        all
    }

    /// The address it logged for /healthz and /metrics (it was given port 0).
    async fn listen_address(&mut self) -> String {
        for _ in 0..150 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the refresher exited with {status}: {}", self.output());
            }
            let output = self.output();
            if let Some(line) = output
                .lines()
                .find(|l| l.contains("tokenwarden refresher started"))
            {
                let after = &line[line.find("listen=").unwrap() + "listen=".len()..];
                let addr: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
                return format!("http://{addr}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the refresher did not start within 15 s: {}", self.output());
    }

    /// Waits for it to exit on its own (up to `limit`).
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("still running after {limit:?}: {}", self.output()),
        }
    }

    /// SIGTERM, as a service manager stops it.
    async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        self.exit_within(Duration::from_secs(10)).await
    }
}

/// A connect flow for `c1` whose access token lives [`TOKEN_SECS`]; the provider goes
/// back to its hour-long tokens afterwards, so one refresh puts `c1` far from due.
async fn connect_short_lived(server: &impl Server, keys: &Keys, provider: &FakeProvider) {
    provider.set_quirks(Quirks {
        expires_in_override: Some(TOKEN_SECS),
        ..Quirks::default()
    });
    let session = send(
        server,
        Method::POST,
        "/v1/connect-sessions",
        Auth::Bearer(&keys.connect_key),
        Some(&json!({"app": "fake", "connection_id": "c1"})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let callback = follow_authorization(
        server.http(),
        session["authorization_url"].as_str().unwrap(),
    )
    .await;
    let page = fetch(server.http(), Method::GET, &callback, Auth::None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    provider.set_quirks(Quirks::default());
}

async fn connection(server: &impl Server, keys: &Keys) -> Value {
    send(
        server,
        Method::GET,
        "/v1/connections/c1",
        Auth::Bearer(&keys.read_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK)
}

/// Polls `probe` every 100 ms until it answers `Some`, for at most `limit`.
async fn eventually<T, F>(limit: Duration, what: &str, refresher: &Refresher, mut probe: F) -> T
where
    F: AsyncFnMut() -> Option<T>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; refresher output:\n{}",
            refresher.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_refreshes_a_zero_knowledge_connection_when_it_comes_due() {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    // A skew just under the token's lifetime, so the refresh comes due seconds after
    // the connect rather than a minute later.
    let server = Process::start_with_env(
        dir.path(),
        database.url(),
        "server",
        "info",
        5,
        &[("TOKENWARDEN_REFRESH_SKEW_SECONDS", "110")],
    )
    .await;
    let keys = set_up(&server, &provider, &SCOPES).await;
    let refresh_key = role_key(&server, &keys.admin_key, "refresh").await;
    connect_short_lived(&server, &keys, &provider).await;
    let before = connection(&server, &keys).await;
    let due_at = before
        .get("next_refresh_at")
        .filter(|v| !v.is_null())
        .map(utc)
        .unwrap_or_else(|| {
            panic!("GET /v1/connections/c1 has no next_refresh_at (the server side of the refresher): {before}")
        });
    assert!(
        due_at <= utc(&before["expires_at"]),
        "due ({due_at}) before expiry: {before}"
    );
    let due_in = (due_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    assert_eq!(provider.refresh_calls(), 0);

    let mut refresher = Refresher::start(dir.path(), "refresher", &server.base_url, &refresh_key);
    let own = refresher.listen_address().await;

    // Due at `due_at`: polled every second, so refreshed within a few seconds of it.
    let limit = due_in + Duration::from_secs(15);
    eventually(
        limit,
        "the provider saw a refresh",
        &refresher,
        async || (provider.refresh_calls() >= 1).then_some(()),
    )
    .await;
    let http = browser();
    let metrics = eventually(
        Duration::from_secs(10),
        "/metrics counted the refresh",
        &refresher,
        async || {
            let text = http
                .get(format!("{own}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("tokenwarden_refresher_refreshes_total{outcome=\"success\"} 1")
                .then_some(text)
        },
    )
    .await;
    let after = connection(&server, &keys).await;
    let health = http.get(format!("{own}/healthz")).send().await.unwrap();
    let health_status = health.status();
    let health: Value = health.json().await.unwrap();
    // Give it a few more polls: the refreshed connection is no longer due.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = refresher.terminate().await;
    let output = refresher.output();

    assert_eq!(provider.refresh_calls(), 1, "{output}");
    assert_eq!(provider.successful_refreshes(), 1);
    assert_eq!(after["status"], "active", "{after}");
    assert_ne!(after["refreshed_at"], before["refreshed_at"], "{after}");
    assert!(utc(&after["refreshed_at"]) >= due_at - chrono::TimeDelta::seconds(2));
    assert!(
        utc(&after["expires_at"]) > utc(&before["expires_at"]),
        "{after}"
    );
    assert_eq!(health_status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
    assert!(
        metrics.contains("tokenwarden_refresher_polls_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(status.success(), "{status}: {output}");
    assert!(output.contains("connection refreshed"), "{output}");
    assert!(output.contains("connection.id=c1"), "{output}");
    assert!(output.contains("tokenwarden refresher stopped"), "{output}");

    let mut secrets: Vec<(String, String)> = provider
        .issued_secrets()
        .into_iter()
        .map(|s| ("issued by the provider".to_owned(), s))
        .collect();
    assert!(secrets.len() >= 5, "code, 2 access and 2 refresh tokens");
    for (what, key) in [
        ("refresh key", &refresh_key),
        ("admin key", &keys.admin_key),
        ("read key", &keys.read_key),
    ] {
        secrets.push((what.into(), key.clone()));
        secrets.push((format!("{what} secret"), secret_of(key).to_owned()));
    }
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, value)| output.contains(value.as_str()))
        .map(|(what, _)| what.as_str())
        .collect();
    assert_eq!(leaked, Vec::<&str>::new());
}

#[tokio::test]
async fn the_refresher_refuses_to_start_with_a_key_that_cannot_refresh() {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    let server = Process::start_on(dir.path(), database.url(), "server", "info", 5).await;
    let keys = set_up(&server, &provider, &SCOPES).await;

    let mut refresher = Refresher::start(dir.path(), "reader", &server.base_url, &keys.read_key);
    let status = refresher.exit_within(Duration::from_secs(15)).await;
    let output = refresher.output();

    assert!(!status.success(), "{output}");
    let key_id = &keys.read_key[4..20];
    assert!(
        output.contains(&format!(
            "tokenwarden: the API key {key_id} has the role(s) read but the refresher needs the refresh role"
        )),
        "{output}"
    );
    assert!(!output.contains(secret_of(&keys.read_key)), "{output}");
    assert!(
        !output.contains("tokenwarden refresher started"),
        "{output}"
    );
}
