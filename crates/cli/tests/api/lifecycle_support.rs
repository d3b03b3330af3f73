//! Support for the lifecycle tests: a server with its background workers on a fast
//! tick, a managed vault (the server's master key opens it), the fake provider, and a
//! webhook receiver registered for every event.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{FakeProvider, FakeProviderConfig};
use tokenwarden_server::Clock;
use tokenwarden_service::LifecycleSettings;
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};

use crate::helpers::{Answer, Auth, PASSWORD};
use crate::oauth_support::{
    SCOPES, authorize, create_app, fetch, provider_config, register_provider, role_key, send,
};
use crate::webhook_receiver::Receiver;

pub(crate) const MASTER: [u8; 32] = [7; 32];

/// Background workers that look every 20 ms.
pub(crate) fn fast_lifecycle() -> LifecycleSettings {
    LifecycleSettings {
        background: true,
        tick_ms: 20,
        claim_secs: 5,
        ..LifecycleSettings::default()
    }
}

pub(crate) struct Env {
    pub(crate) app: TestApp,
    pub(crate) provider: FakeProvider,
    pub(crate) admin_key: String,
    pub(crate) connect_key: String,
    pub(crate) read_key: String,
    pub(crate) receiver: Receiver,
    pub(crate) webhook_secret: String,
    pub(crate) webhook_id: String,
}

/// A managed (or zero-knowledge) vault on a server with fast background workers.
pub(crate) async fn env(managed: bool) -> Env {
    env_with(managed, provider_config()).await
}

pub(crate) async fn env_with(managed: bool, config: FakeProviderConfig) -> Env {
    let provider = FakeProvider::start(config).await.unwrap();
    let app = spawn_app_with(SpawnOptions {
        master_key: Some(MASTER),
        lifecycle: Some(fast_lifecycle()),
        ..SpawnOptions::default()
    })
    .await;
    let email = "lifecycle@example.com";
    send(
        &app,
        Method::POST,
        "/v1/accounts",
        Auth::None,
        Some(&json!({"email": email, "password": PASSWORD})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let vault = send(
        &app,
        Method::POST,
        "/v1/vaults",
        Auth::Basic(email, PASSWORD),
        Some(&json!({"name": "team", "managed": managed})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    assert_eq!(vault["managed"], managed);
    let admin_key = vault["api_key"]["key"].as_str().unwrap().to_owned();
    register_provider(&app, &admin_key, &provider).await;
    create_app(&app, &admin_key, "fake", &SCOPES).await;
    let connect_key = role_key(&app, &admin_key, "connect").await;
    let read_key = role_key(&app, &admin_key, "read").await;
    let receiver = Receiver::start().await;
    let hook = send(
        &app,
        Method::POST,
        "/v1/webhooks",
        Auth::Bearer(&admin_key),
        Some(&json!({"url": receiver.url(), "description": "every event"})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    Env {
        app,
        provider,
        admin_key,
        connect_key,
        read_key,
        receiver,
        webhook_secret: hook["secret"].as_str().unwrap().to_owned(),
        webhook_id: hook["id"].as_str().unwrap().to_owned(),
    }
}

impl Env {
    pub(crate) async fn connect(&self, connection_id: &str) {
        let session = send(
            &self.app,
            Method::POST,
            "/v1/connect-sessions",
            Auth::Bearer(&self.connect_key),
            Some(&json!({"app": "fake", "connection_id": connection_id})),
        )
        .await
        .expect_json(StatusCode::CREATED);
        let callback = authorize(&self.app.client, &session).await;
        let page = fetch(&self.app.client, Method::GET, &callback, Auth::None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    }

    pub(crate) async fn connection(&self, id: &str) -> Value {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/connections/{id}"),
            Auth::Bearer(&self.read_key),
            None,
        )
        .await
        .expect_json(StatusCode::OK)
    }

    pub(crate) async fn token(&self, id: &str) -> Answer {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/connections/{id}/token"),
            Auth::Bearer(&self.read_key),
            None,
        )
        .await
    }

    /// Moves the server's and the provider's clocks together.
    pub(crate) fn advance(&self, secs: i64) {
        self.app.clock.advance_secs(secs);
        self.provider.advance_secs(secs);
    }

    /// Waits until `check` holds for the connection (up to 15 s of real time).
    pub(crate) async fn wait_until(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let c = self.connection(id).await;
            if check(&c) {
                return c;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "waited 15 s for {what}; the connection is {c}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.app.clock.now()
    }
}

/// Asserts a problem+json answer with `code`, whatever its wording.
pub(crate) fn expect_problem(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "unexpected answer: {}", answer.text);
    assert_eq!(answer.json()["code"], code, "{}", answer.text);
}
