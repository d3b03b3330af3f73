//! The lifecycle across real `tokenwarden serve` processes on the suite's database: a
//! server killed with SIGKILL while a delivery is in flight delivers it once after the
//! restart, with the same `webhook-id`; two servers on one database refresh each
//! managed connection once in the background and send each event once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{FakeProvider, Quirks};
use tokenwarden_testing::TestDatabase;

use crate::helpers::{Auth, PASSWORD};
use crate::oauth_support::{
    SCOPES, Server, create_app, fetch, follow_authorization, provider_config, register_provider,
    role_key, send,
};
use crate::processes::Process;
use crate::webhook_receiver::Receiver;

const MASTER_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";
const WAIT: Duration = Duration::from_secs(20);

fn lifecycle_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TOKENWARDEN_MASTER_KEY", MASTER_HEX),
        ("TOKENWARDEN_LIFECYCLE_TICK_MS", "25"),
        ("TOKENWARDEN_LIFECYCLE_CLAIM_SECONDS", "3"),
    ]
}

struct Vault {
    admin_key: String,
    connect_key: String,
}

/// A managed vault with the app `fake` and a webhook to `receiver`; answers the keys and
/// the endpoint's id and secret.
async fn managed_vault(
    server: &impl Server,
    provider: &FakeProvider,
    receiver: &Receiver,
) -> (Vault, String, String) {
    send(
        server,
        Method::POST,
        "/v1/accounts",
        Auth::None,
        Some(&json!({"email": "ops@example.com", "password": PASSWORD})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let vault = send(
        server,
        Method::POST,
        "/v1/vaults",
        Auth::Basic("ops@example.com", PASSWORD),
        Some(&json!({"name": "fleet", "managed": true})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let admin_key = vault["api_key"]["key"].as_str().unwrap().to_owned();
    register_provider(server, &admin_key, provider).await;
    create_app(server, &admin_key, "fake", &SCOPES).await;
    let connect_key = role_key(server, &admin_key, "connect").await;
    let hook = send(
        server,
        Method::POST,
        "/v1/webhooks",
        Auth::Bearer(&admin_key),
        Some(&json!({"url": receiver.url()})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    (
        Vault {
            admin_key,
            connect_key,
        },
        hook["id"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    )
}

async fn connect(server: &impl Server, vault: &Vault, id: &str) -> Value {
    let session = send(
        server,
        Method::POST,
        "/v1/connect-sessions",
        Auth::Bearer(&vault.connect_key),
        Some(&json!({"app": "fake", "connection_id": id})),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_delivery_delivers_once_after_the_restart_with_the_same_id() {
    let db = TestDatabase::from_env().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let receiver = Receiver::start().await;
    let env = lifecycle_env();
    let mut first = Process::start_with_env(dir.path(), db.url(), "first", "info", 5, &env).await;
    let (vault, hook_id, secret) = managed_vault(&first, &provider, &receiver).await;

    // The receiver holds the first delivery open; the server dies while it waits.
    receiver.delay(Duration::from_secs(60));
    let queued = send(
        &first,
        Method::POST,
        &format!("/v1/webhooks/{hook_id}/test"),
        Auth::Bearer(&vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    let event_id = queued["event_id"].as_str().unwrap().to_owned();
    receiver.wait_for("webhook.test", 1, WAIT).await;
    first.child.start_kill().unwrap(); // SIGKILL
    first.child.wait().await.unwrap();

    receiver.delay(Duration::ZERO);
    let second = Process::start_with_env(dir.path(), db.url(), "second", "info", 5, &env).await;
    let got = receiver.wait_for("webhook.test", 2, WAIT).await;
    assert_eq!(got[0].id(), event_id);
    assert_eq!(
        got[1].id(),
        event_id,
        "the retry after the restart has the same webhook-id"
    );
    assert!(got[1].verifies_with(&secret));
    // Delivered once after the restart: nothing more comes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.of_type("webhook.test").len(), 2);
    let log = send(
        &second,
        Method::GET,
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        Auth::Bearer(&vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1, "the killed attempt left no log row: {log:?}");
    assert_eq!(log[0]["status_code"], 200);
    assert_eq!(log[0]["event_id"], event_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_refresh_each_managed_connection_once_and_send_each_event_once() {
    let db = TestDatabase::from_env().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let receiver = Receiver::start().await;
    let env = lifecycle_env();
    let a = Arc::new(Process::start_with_env(dir.path(), db.url(), "a", "info", 5, &env).await);
    let b = Arc::new(Process::start_with_env(dir.path(), db.url(), "b", "info", 5, &env).await);
    let (vault, _, secret) = managed_vault(&*a, &provider, &receiver).await;

    // Tokens that expire within the refresh skew: due at once, on both servers. The
    // provider rotates refresh tokens and refuses a reused one, so a connection
    // refreshed twice for one due time would show as a refused refresh and a
    // `needs_reauth` connection.
    const CONNECTIONS: usize = 8;
    provider.set_refresh_rotation(true);
    provider.set_quirks(Quirks {
        expires_in_override: Some(30),
        ..Quirks::default()
    });
    for i in 0..CONNECTIONS {
        let server: &Process = if i % 2 == 0 { &a } else { &b };
        connect(server, &vault, &format!("fleet-{i}")).await;
    }
    // From now on refreshes issue hour-long tokens: each connection settles after one
    // more refresh.
    provider.set_quirks(Quirks::default());
    let read_key = role_key(&*a, &vault.admin_key, "read").await;
    let started = Instant::now();
    loop {
        let list = send(
            &*b,
            Method::GET,
            "/v1/connections",
            Auth::Bearer(&read_key),
            None,
        )
        .await
        .expect_json(StatusCode::OK);
        let settled = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["status"] == "active"
                    && c["next_refresh_at"]
                        .as_str()
                        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                        .is_some_and(|t| t > chrono::Utc::now() + chrono::Duration::minutes(30))
            })
            .count();
        if settled == CONNECTIONS {
            break;
        }
        assert!(started.elapsed() < WAIT, "not settled: {list}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let refreshes = provider.successful_refreshes();
    assert!(
        refreshes >= CONNECTIONS as u64,
        "{refreshes} background refreshes"
    );
    let created = receiver
        .wait_for("connection.created", CONNECTIONS, WAIT)
        .await;
    // Time for a duplicate to show up, if either server were to send or refresh twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        provider.successful_refreshes(),
        refreshes,
        "settled connections are not refreshed again"
    );
    assert_eq!(
        provider.refresh_calls(),
        provider.successful_refreshes(),
        "no refresh token was used twice (the provider refuses a reused one)"
    );
    assert_eq!(
        receiver.of_type("connection.created").len(),
        CONNECTIONS,
        "one delivery per event"
    );
    let mut ids: Vec<String> = created.iter().map(|d| d.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CONNECTIONS);
    assert!(created.iter().all(|d| d.verifies_with(&secret)));
    for process in [&a, &b] {
        let output = process.output();
        assert!(!output.contains("panicked"), "{output}");
    }
}
