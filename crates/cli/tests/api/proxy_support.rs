//! Shared set-up of the API proxy tests (`/v1/proxy/{connection_id}/{path}`): the fake
//! provider registered with its API base URL, an app, keys of every role and `alice`'s
//! connection; proxied calls, the vault's audit, problem codes and custom-provider
//! connections.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};

use crate::helpers::{Answer, Auth, PROBLEM_JSON};
use crate::oauth_support::{OAuthEnv, SCOPES, create_app, provider_config, role_key, send};

/// The fake provider registered with its API base URL, an app, keys of every role, and
/// the connection `alice` made through a real connect flow.
pub struct ProxyEnv {
    pub env: OAuthEnv,
    pub proxy_key: String,
}

impl std::ops::Deref for ProxyEnv {
    type Target = OAuthEnv;
    fn deref(&self) -> &OAuthEnv {
        &self.env
    }
}

pub async fn proxy_env() -> ProxyEnv {
    proxy_env_with(SpawnOptions::default()).await
}

pub async fn proxy_env_with(options: SpawnOptions) -> ProxyEnv {
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let app = spawn_app_with(options).await;
    let vault = app.vault("ada@example.com").await;
    let created = send(
        &app,
        Method::POST,
        "/v1/providers",
        Auth::Bearer(&vault.admin_key),
        Some(&json!({
            "key": "fake",
            "issuer": provider.issuer(),
            "api_base_url": provider.api_base_url(),
        })),
    )
    .await
    .expect_json(StatusCode::CREATED);
    assert_eq!(
        created["api_base_urls"],
        json!([format!(
            "{}",
            url::Url::parse(&provider.api_base_url()).unwrap()
        )])
    );
    let oauth_app = create_app(&app, &vault.admin_key, "fake", &SCOPES).await;
    let connect_key = role_key(&app, &vault.admin_key, "connect").await;
    let read_key = role_key(&app, &vault.admin_key, "read").await;
    let proxy_key = role_key(&app, &vault.admin_key, "proxy").await;
    let env = OAuthEnv {
        app,
        provider,
        vault,
        connect_key,
        read_key,
        oauth_app,
    };
    let (_, page) = env.connect("alice").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    env.provider.reset_counters();
    env.provider.clear_requests();
    ProxyEnv { env, proxy_key }
}

impl ProxyEnv {
    pub fn proxy_url(&self, rest: &str) -> String {
        self.app.url(&format!("/v1/proxy/{rest}"))
    }

    /// A proxied request with `key`, read whole.
    pub async fn call(
        &self,
        method: Method,
        rest: &str,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self
            .app
            .client
            .request(method, self.proxy_url(rest))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.body(body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, rest: &str) -> Answer {
        self.call(Method::GET, rest, &self.proxy_key, None).await
    }

    /// The access token the provider issued last, which the proxy must inject.
    pub fn current_token(&self) -> String {
        self.grant().access_token.unwrap()
    }

    /// Every audit record of the vault, oldest first, through `GET /v1/audit`.
    pub async fn audit(&self) -> Vec<Value> {
        let mut records = send(
            &self.app,
            Method::GET,
            "/v1/audit?limit=1000",
            Auth::Bearer(&self.vault.admin_key),
            None,
        )
        .await
        .expect_json(StatusCode::OK)
        .as_array()
        .unwrap()
        .clone();
        records.reverse();
        records
    }

    pub async fn proxy_audit(&self) -> Vec<Value> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r["action"] == "proxy.request")
            .collect()
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        text,
    }
}

pub fn problem_code(answer: &Answer) -> String {
    assert_eq!(answer.content_type(), Some(PROBLEM_JSON), "{}", answer.text);
    answer.json()["code"].as_str().unwrap().to_owned()
}

/// An app on a custom provider with `api_base_url`, and an imported connection to it.
pub async fn custom_connection(
    app: &TestApp,
    admin_key: &str,
    connect_key: &str,
    key: &str,
    api_base_url: Option<&str>,
    connection: &str,
) -> Answer {
    let mut spec = json!({
        "key": key,
        "authorization_url": format!("https://auth.{key}.test/authorize"),
        "token_url": format!("https://auth.{key}.test/token"),
    });
    if let Some(base) = api_base_url {
        spec["api_base_url"] = json!(base);
    }
    let created = send(
        app,
        Method::POST,
        "/v1/providers",
        Auth::Bearer(admin_key),
        Some(&spec),
    )
    .await;
    if created.status != StatusCode::CREATED {
        return created;
    }
    send(
        app,
        Method::POST,
        "/v1/apps",
        Auth::Bearer(admin_key),
        Some(&json!({
            "key": key, "provider": key, "client_id": "id", "client_secret": "secret", "scopes": ["a"],
        })),
    )
    .await
    .expect_json(StatusCode::CREATED);
    send(
        app,
        Method::POST,
        "/v1/connections",
        Auth::Bearer(connect_key),
        Some(&json!({"app": key, "connection_id": connection, "access_token": format!("at-{connection}")})),
    )
    .await
}
