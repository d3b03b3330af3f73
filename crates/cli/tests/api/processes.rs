//! Real `tokenwarden serve` processes: two replicas on one SQLite file refreshing once,
//! a refresher killed mid-refresh, and logs at trace level holding no secret.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{FakeProvider, Quirks};
use tokenwarden_testing::TestDatabase;
use tokio::process::{Child, Command};

use crate::helpers::{Answer, Auth, PASSWORD, secret_of};
use crate::oauth_support::{
    CLIENT_SECRET, Keys, SCOPES, Server, browser, create_app, fetch, follow_authorization,
    make_keys, provider_config, query_param, register_provider, report, send,
};

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");
const SETTINGS: [&str; 13] = [
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
    "TOKENWARDEN_REFRESH_LEASE_SECONDS",
    "RUST_LOG",
];

/// A `tokenwarden serve` child with its output captured in files.
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) base_url: String,
    client: Client,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Server for Process {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn http(&self) -> &Client {
        &self.client
    }
}

impl Process {
    /// Starts `tokenwarden serve` on `database` (the suite's backend), with its output
    /// in `dir`, and waits for `/readyz` (up to 15 s).
    async fn start(dir: &Path, database: &TestDatabase, name: &str, log: &str) -> Self {
        Self::start_on(dir, database.url(), name, log, 5).await
    }

    /// Starts `tokenwarden serve` on the database `url` (output files in `dir`) with a
    /// refresh lease of `lease_secs`, and waits for `/readyz` (up to 15 s).
    pub(crate) async fn start_on(
        dir: &Path,
        url: &str,
        name: &str,
        log: &str,
        lease_secs: u64,
    ) -> Self {
        Self::start_with_env(dir, url, name, log, lease_secs, &[]).await
    }

    /// As [`Process::start_on`], with more settings in the environment.
    pub(crate) async fn start_with_env(
        dir: &Path,
        url: &str,
        name: &str,
        log: &str,
        lease_secs: u64,
        env: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let mut cmd = Command::new(BINARY);
        cmd.arg("serve")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true);
        for setting in SETTINGS {
            cmd.env_remove(setting);
        }
        cmd.env("TOKENWARDEN_DATABASE_URL", url)
            .env("TOKENWARDEN_LISTEN", format!("127.0.0.1:{port}"))
            .env("TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS", "true")
            .env("TOKENWARDEN_REFRESH_LEASE_SECONDS", lease_secs.to_string())
            .env("TOKENWARDEN_LOG", log);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().unwrap();
        let base_url = format!("http://127.0.0.1:{port}");
        let client = browser();
        for _ in 0..150 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{name} exited with {status}: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            if let Ok(r) = client.get(format!("{base_url}/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return Self {
                    child,
                    base_url,
                    client,
                    stdout,
                    stderr,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} was not ready within 15 s");
    }

    /// Everything it wrote to stdout and stderr.
    pub(crate) fn output(&self) -> String {
        let mut all = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        all.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        all
    }

    pub(crate) async fn token(&self, keys: &Keys, query: &str) -> Answer {
        send(
            self,
            Method::GET,
            &format!("/v1/connections/c1/token{query}"),
            Auth::Bearer(&keys.read_key),
            None,
        )
        .await
    }
}

/// Keys, the provider and the app `fake`, set up through `server`'s API.
pub(crate) async fn set_up(server: &impl Server, provider: &FakeProvider, scopes: &[&str]) -> Keys {
    let keys = make_keys(server, "ada@example.com").await;
    register_provider(server, &keys.admin_key, provider).await;
    create_app(server, &keys.admin_key, "fake", scopes).await;
    keys
}

/// A connect flow for `c1` through `server`; returns the session.
async fn connect(server: &impl Server, keys: &Keys) -> Value {
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
    session
}

/// Connects `c1` with a token inside the refresh skew (expires in 30 s).
pub(crate) async fn connect_expiring(server: &impl Server, keys: &Keys, provider: &FakeProvider) {
    provider.set_quirks(Quirks {
        expires_in_override: Some(30),
        ..Quirks::default()
    });
    connect(server, keys).await;
    provider.set_quirks(Quirks::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_database_refresh_an_expiring_token_once() {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    let a = Arc::new(Process::start(dir.path(), &database, "a", "debug").await);
    let b = Arc::new(Process::start(dir.path(), &database, "b", "debug").await);
    let keys = Arc::new(set_up(&*a, &provider, &SCOPES).await);
    connect_expiring(&*a, &keys, &provider).await;
    provider.set_token_latency(Duration::from_millis(200));
    let started = Instant::now();

    let mut tasks = Vec::new();
    for i in 0..50 {
        let server = if i % 2 == 0 { a.clone() } else { b.clone() };
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let answer = server.token(&keys, "").await;
            (i % 2, answer.status, answer.text)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let elapsed = started.elapsed();
    let newest = provider.latest_grant().unwrap().access_token.unwrap();
    let ok = answers
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::OK)
        .count();
    report(format_args!(
        "race (two processes, one SQLite file): 25 reads at A + 25 at B -> {ok} x 200, \
         provider refresh calls = {}, done in {elapsed:?}",
        provider.refresh_calls()
    ));
    for (process, status, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "process {process}: {text}");
        let token: Value = serde_json::from_str(text).unwrap();
        assert_eq!(token["access_token"], newest);
    }
    assert_eq!(provider.refresh_calls(), 1);
    assert_eq!(provider.reuse_detections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_is_taken_over_after_the_refreshing_process_is_killed() {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    let mut a = Process::start(dir.path(), &database, "a", "debug").await;
    let b = Process::start(dir.path(), &database, "b", "debug").await;
    let keys = Arc::new(set_up(&a, &provider, &SCOPES).await);
    connect_expiring(&a, &keys, &provider).await;
    let old = provider.latest_grant().unwrap();
    provider.set_token_latency(Duration::from_secs(2));
    let started = Instant::now();

    let url = format!("{}/v1/connections/c1/token", a.base_url);
    let read_key = keys.read_key.clone();
    let at_a = tokio::spawn(async move { browser().get(url).bearer_auth(read_key).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls_before_kill = provider.refresh_calls();
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let killed_at = started.elapsed();
    let a_result = at_a.await.unwrap();
    // Past the fake's 2 s latency: whatever it was going to do with A's call is done.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
    let rotated_before_death = provider.successful_refreshes() > 0;
    provider.set_token_latency(Duration::ZERO);

    let b_started = Instant::now();
    let answer = b.token(&keys, "").await;
    let b_waited = b_started.elapsed();

    report(format_args!(
        "kill: A's refresh call reached the fake ({calls_before_kill} call) and A was SIGKILLed at {killed_at:?} \
         (A's caller got {}); the fake {} A's refresh; B answered {} after {b_waited:?} \
         ({:?} after A's read began; lease 5 s)",
        if a_result.is_err() {
            "a connection error"
        } else {
            "an answer"
        },
        if rotated_before_death {
            "completed (rotated)"
        } else {
            "never completed"
        },
        answer.status,
        started.elapsed(),
    ));
    assert_eq!(calls_before_kill, 1);
    assert!(a_result.is_err());
    if rotated_before_death {
        // The provider rotated the refresh token but its answer died with A: the
        // stored refresh token is the rotated-out one, and reusing it ends the grant.
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
        assert_eq!(answer.json()["code"], "needs_reauth");
        return;
    }
    // The fake dropped A's call with its connection: nothing rotated, B takes over
    // once A's lease has run out and refreshes with the stored refresh token.
    let token = answer.expect_json(StatusCode::OK);
    assert!(
        started.elapsed() <= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let grant = provider.latest_grant().unwrap();
    assert_eq!(token["refreshed"], true);
    assert_eq!(token["access_token"], grant.access_token.clone().unwrap());
    assert_ne!(token["access_token"], old.access_token.clone().unwrap());
    assert_eq!(provider.successful_refreshes(), 1);
    assert_eq!(provider.reuse_detections(), 0);
    let forced = b.token(&keys, "?force_refresh=true").await;
    let forced = forced.expect_json(StatusCode::OK);
    assert_eq!(forced["refreshed"], true);
    assert_eq!(
        forced["access_token"],
        provider.latest_grant().unwrap().access_token.unwrap()
    );
    assert_eq!(provider.successful_refreshes(), 2);
    assert_eq!(provider.reuse_detections(), 0);
}

#[tokio::test]
async fn logs_at_trace_level_hold_no_secret() {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::from_env().await;
    let mut p = Process::start(dir.path(), &database, "trace", "trace").await;
    let keys = set_up(&p, &provider, &["openid", "email"]).await;

    let session = connect(&p, &keys).await;
    let state = query_param(session["authorization_url"].as_str().unwrap(), "state").unwrap();
    p.token(&keys, "").await.expect_json(StatusCode::OK);
    let refreshed = p.token(&keys, "?force_refresh=true").await;
    assert_eq!(refreshed.expect_json(StatusCode::OK)["refreshed"], true);
    let deleted = send(
        &p,
        Method::DELETE,
        "/v1/connections/c1",
        Auth::Bearer(&keys.connect_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    p.child.start_kill().unwrap();
    p.child.wait().await.unwrap();

    let output = p.output();
    let mut secrets: Vec<(String, String)> = provider
        .issued_secrets()
        .into_iter()
        .map(|s| ("issued by the provider".to_owned(), s))
        .collect();
    assert!(secrets.len() >= 6, "code, 2 access, 2 refresh, id_tokens");
    secrets.push(("client secret".into(), CLIENT_SECRET.into()));
    secrets.push(("state".into(), state));
    secrets.push(("password".into(), PASSWORD.into()));
    for (what, key) in [
        ("admin key", &keys.admin_key),
        ("connect key", &keys.connect_key),
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
    report(format_args!(
        "logs: {} bytes, {} lines at trace level, {} secrets searched, {} found",
        output.len(),
        output.lines().count(),
        secrets.len(),
        leaked.len()
    ));
    assert!(output.contains("TRACE"), "the log level took effect");
    assert!(output.contains("connection connected"));
    assert_eq!(leaked, Vec::<&str>::new());
}
