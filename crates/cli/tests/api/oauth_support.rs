//! Shared set-up of the OAuth tests: a fake provider registered through the API, an
//! app and keys, and the browser's part of a connect flow. Everything talks to a
//! [`Server`]: the in-process app or a real `tokenwarden serve` process.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{
    ClientRegistration, FakeProvider, FakeProviderConfig, GrantSnapshot, Quirks,
};
use tokenwarden_testing::{SpawnOptions, TestApp, TestVault, spawn_app_with};
use url::Url;

pub use crate::helpers::fetch;
use crate::helpers::{Answer, Auth, Body, PASSWORD};

pub const CLIENT_ID: &str = "tw-test-client";
pub const CLIENT_SECRET: &str = "tw-test-client-secret-4b1d9c";
/// The app's scopes unless a test asks for others.
pub const SCOPES: [&str; 2] = ["profile", "email"];

/// Something that answers the tokenwarden API.
pub trait Server {
    fn base_url(&self) -> &str;
    fn http(&self) -> &Client;
}

impl Server for TestApp {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn http(&self) -> &Client {
        &self.client
    }
}

/// A request to `server` (`path` relative to its base URL), read whole.
pub async fn send(
    server: &impl Server,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<&Value>,
) -> Answer {
    fetch(
        server.http(),
        method,
        &format!("{}{path}", server.base_url()),
        auth,
        body.map(Body::json),
    )
    .await
}

/// A client that follows no redirects, as the tests' browser.
pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The fake provider with one confidential client (any redirect URI accepted: the
/// app's id, hence its redirect URI, is only known once the app exists).
pub fn provider_config() -> FakeProviderConfig {
    FakeProviderConfig::with_client(ClientRegistration::new(CLIENT_ID, CLIENT_SECRET))
}

/// `POST /v1/providers` from the fake's OpenID discovery document.
pub async fn register_provider(server: &impl Server, admin_key: &str, provider: &FakeProvider) {
    let answer = send(
        server,
        Method::POST,
        "/v1/providers",
        Auth::Bearer(admin_key),
        Some(&json!({"key": "fake", "issuer": provider.issuer()})),
    )
    .await;
    let body = answer.expect_json(StatusCode::CREATED);
    assert_eq!(body["issuer"], provider.issuer());
    assert_eq!(body["token_url"], provider.token_endpoint());
    assert_eq!(body["revocation_url"], provider.revocation_endpoint());
}

/// `POST /v1/apps` on the provider `fake`; returns the 201 body.
pub async fn create_app(
    server: &impl Server,
    admin_key: &str,
    key: &str,
    scopes: &[&str],
) -> Value {
    send(
        server,
        Method::POST,
        "/v1/apps",
        Auth::Bearer(admin_key),
        Some(&json!({
            "key": key,
            "provider": "fake",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": scopes,
        })),
    )
    .await
    .expect_json(StatusCode::CREATED)
}

/// An account, a vault, its admin key and a `connect` and a `read` key, through the
/// API of any server.
pub struct Keys {
    pub admin_key: String,
    pub connect_key: String,
    pub read_key: String,
}

/// A key with one role, made with the admin key.
pub async fn role_key(server: &impl Server, admin_key: &str, role: &str) -> String {
    let body = send(
        server,
        Method::POST,
        "/v1/api-keys",
        Auth::Bearer(admin_key),
        Some(&json!({"name": role, "roles": [role]})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    body["key"].as_str().unwrap().to_owned()
}

pub async fn make_keys(server: &impl Server, email: &str) -> Keys {
    send(
        server,
        Method::POST,
        "/v1/accounts",
        Auth::None,
        Some(&json!({"email": email, "password": PASSWORD})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let vault = send(
        server,
        Method::POST,
        "/v1/vaults",
        Auth::Basic(email, PASSWORD),
        Some(&json!({"name": "team"})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let admin_key = vault["api_key"]["key"].as_str().unwrap().to_owned();
    let connect_key = role_key(server, &admin_key, "connect").await;
    let read_key = role_key(server, &admin_key, "read").await;
    Keys {
        admin_key,
        connect_key,
        read_key,
    }
}

/// The in-process server, a fake provider registered as `fake`, an app `fake` and keys.
pub struct OAuthEnv {
    pub app: TestApp,
    pub provider: FakeProvider,
    pub vault: TestVault,
    pub connect_key: String,
    pub read_key: String,
    /// The `POST /v1/apps` answer.
    pub oauth_app: Value,
}

pub async fn oauth_env() -> OAuthEnv {
    oauth_env_with(SpawnOptions::default(), provider_config(), &SCOPES).await
}

pub async fn oauth_env_with(
    options: SpawnOptions,
    config: FakeProviderConfig,
    scopes: &[&str],
) -> OAuthEnv {
    let provider = FakeProvider::start(config).await.unwrap();
    let app = spawn_app_with(options).await;
    let vault = app.vault("ada@example.com").await;
    register_provider(&app, &vault.admin_key, &provider).await;
    let oauth_app = create_app(&app, &vault.admin_key, "fake", scopes).await;
    assert_eq!(
        oauth_app["redirect_uri"],
        format!(
            "{}/v1/oauth/callback/{}",
            app.base_url,
            oauth_app["id"].as_str().unwrap()
        )
    );
    let (_, connect_key) = app.key(&vault, &["connect"]).await;
    let (_, read_key) = app.key(&vault, &["read"]).await;
    OAuthEnv {
        app,
        provider,
        vault,
        connect_key,
        read_key,
        oauth_app,
    }
}

impl OAuthEnv {
    /// `POST /v1/connect-sessions`; the whole answer.
    pub async fn start_session(&self, body: &Value) -> Answer {
        send(
            &self.app,
            Method::POST,
            "/v1/connect-sessions",
            Auth::Bearer(&self.connect_key),
            Some(body),
        )
        .await
    }

    /// `GET /v1/connect-sessions/{id}`; the 200 body.
    pub async fn session_status(&self, id: &str) -> Value {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/connect-sessions/{id}"),
            Auth::Bearer(&self.connect_key),
            None,
        )
        .await
        .expect_json(StatusCode::OK)
    }

    /// A whole connect flow for `connection_id`; returns the session and the page the
    /// callback answered.
    pub async fn connect(&self, connection_id: &str) -> (Value, Answer) {
        let session = self
            .start_session(&json!({"app": "fake", "connection_id": connection_id}))
            .await
            .expect_json(StatusCode::CREATED);
        let callback = authorize(&self.app.client, &session).await;
        let page = fetch(&self.app.client, Method::GET, &callback, Auth::None, None).await;
        (session, page)
    }

    /// The token call with the read key and a query string (`""` for none).
    pub async fn token(&self, connection_id: &str, query: &str) -> Answer {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/connections/{connection_id}/token{query}"),
            Auth::Bearer(&self.read_key),
            None,
        )
        .await
    }

    /// `GET /v1/connections/{id}` with the read key.
    pub async fn connection(&self, connection_id: &str) -> Answer {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/connections/{connection_id}"),
            Auth::Bearer(&self.read_key),
            None,
        )
        .await
    }

    /// The grant the fake issued last.
    pub fn grant(&self) -> GrantSnapshot {
        self.provider.latest_grant().expect("a grant")
    }

    /// `connections.token_format` in the database, if the row exists.
    pub async fn token_format(&self, connection_id: &str) -> Option<i64> {
        self.app
            .database
            .query_i64(
                "SELECT token_format FROM connections WHERE id = $1",
                &[connection_id],
            )
            .await
    }

    /// Connects `connection_id` with a token that expires in 30 s (inside the 60 s
    /// skew), then puts the provider back to by-the-book behaviour.
    pub async fn connect_expiring(&self, connection_id: &str) -> GrantSnapshot {
        self.provider.set_quirks(Quirks {
            expires_in_override: Some(30),
            ..Quirks::default()
        });
        let (_, page) = self.connect(connection_id).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        self.provider.set_quirks(Quirks::default());
        self.grant()
    }
}

/// Follows a session's `authorization_url` at the (auto-approving) fake provider and
/// returns where it redirects the browser: the callback URL with code, state and iss.
pub async fn authorize(client: &Client, session: &Value) -> String {
    follow_authorization(client, session["authorization_url"].as_str().unwrap()).await
}

pub async fn follow_authorization(client: &Client, url: &str) -> String {
    let answer = fetch(client, Method::GET, url, Auth::None, None).await;
    assert!(
        answer.status.is_redirection(),
        "the provider did not redirect: {} {}",
        answer.status,
        answer.text
    );
    answer.header("location").unwrap().to_owned()
}

/// One query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with one query parameter replaced (or added).
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    parsed.to_string()
}

/// The fields of every token answer; `refresh_token` is never among them.
pub const TOKEN_FIELDS: [&str; 6] = [
    "access_token",
    "token_type",
    "expires_at",
    "scopes",
    "refreshed",
    "extras",
];

/// Prints a figure a test measured (seen with `--nocapture`).
#[expect(
    clippy::print_stdout,
    reason = "race and crash figures are reported to whoever runs the tests"
)]
pub fn report(line: std::fmt::Arguments<'_>) {
    println!("{line}");
}
