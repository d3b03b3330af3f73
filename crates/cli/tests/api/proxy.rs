//! The API proxy (`/v1/proxy/{connection_id}/{path}`): requests reach the fake
//! provider's API with the connection's token and without the caller's credentials;
//! bodies stream both ways within their limit; an upstream 401 costs one refresh and
//! one retry; roles, scopes and connection states are enforced; every call is audited
//! once. The SSRF table runs against a server that refuses non-global addresses, with an
//! injected resolver, and proves that nothing is dialled.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_service::{HostResolver, Lookup, ProxySettings};
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Answer, Auth, PROBLEM_JSON, assert_forbidden, assert_problem};
use crate::oauth_support::{OAuthEnv, SCOPES, create_app, provider_config, role_key, send};

const MIB: usize = 1024 * 1024;

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

async fn proxy_env_with(options: SpawnOptions) -> ProxyEnv {
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
    fn proxy_url(&self, rest: &str) -> String {
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
    fn current_token(&self) -> String {
        self.grant().access_token.unwrap()
    }

    /// Every audit record of the vault, oldest first, through `GET /v1/audit`.
    async fn audit(&self) -> Vec<Value> {
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

    async fn proxy_audit(&self) -> Vec<Value> {
        self.audit()
            .await
            .into_iter()
            .filter(|r| r["action"] == "proxy.request")
            .collect()
    }
}

async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        text,
    }
}

fn problem_code(answer: &Answer) -> String {
    assert_eq!(answer.content_type(), Some(PROBLEM_JSON), "{}", answer.text);
    answer.json()["code"].as_str().unwrap().to_owned()
}

/// A body sent in 64 KiB chunks without a Content-Length.
fn chunked(len: usize) -> reqwest::Body {
    let chunks = (0..len.div_ceil(64 * 1024)).map(move |i| {
        let n = (len - i * 64 * 1024).min(64 * 1024);
        Ok::<_, std::io::Error>(vec![(i % 251) as u8; n])
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

fn chunked_bytes(len: usize) -> Vec<u8> {
    (0..len.div_ceil(64 * 1024))
        .flat_map(|i| {
            let n = (len - i * 64 * 1024).min(64 * 1024);
            std::iter::repeat_n((i % 251) as u8, n)
        })
        .collect()
}

#[tokio::test]
async fn proxied_requests_carry_the_connection_token_and_not_the_callers_credentials() {
    let env = proxy_env().await;
    let answer = read(
        env.app
            .client
            .get(env.proxy_url("alice/user/repos?per_page=5&q=a+b&access_token=x"))
            .bearer_auth(&env.proxy_key)
            .header("cookie", "tw_session=caller-cookie")
            .header("x-forwarded-for", "10.1.2.3")
            .header("forwarded", "for=10.1.2.3")
            .header("proxy-authorization", "Basic Y2FsbGVy")
            .header("x-custom", "kept")
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let echo = answer.expect_json(StatusCode::OK);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/user/repos");
    assert_eq!(echo["query"], "per_page=5&q=a+b&access_token=x");
    let headers = &echo["headers"];
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", env.current_token())
    );
    assert!(!headers["authorization"].as_str().unwrap().contains("twk_"));
    for dropped in [
        "cookie",
        "x-forwarded-for",
        "forwarded",
        "proxy-authorization",
    ] {
        assert_eq!(headers[dropped], Value::Null, "{dropped} was forwarded");
    }
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(
        headers["host"],
        env.provider.local_addr().unwrap().to_string()
    );
    // The provider's cookie stays with the provider; its caching rule (here
    // `private, max-age=5`) gives way to no-store: no cache keeps what a token fetched.
    assert_eq!(answer.header("set-cookie"), None);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(env.provider.api_calls(), 1);
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test]
async fn responses_without_their_own_cache_control_get_no_store() {
    let env = proxy_env().await;
    let answer = env.get("alice/no-cache-header").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn every_method_is_forwarded_with_its_body_and_query() {
    let env = proxy_env().await;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let body = (method != Method::GET).then(|| format!("{{\"via\":\"{method}\"}}"));
        let answer = env
            .call(
                method.clone(),
                "alice/items/7?fields=a,b",
                &env.proxy_key,
                body.clone().map(String::into_bytes),
            )
            .await;
        let echo = answer.expect_json(StatusCode::OK);
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["path"], "/api/items/7");
        assert_eq!(echo["query"], "fields=a,b");
        assert_eq!(echo["body"], body.unwrap_or_default());
    }
    assert_eq!(env.provider.api_calls(), 5);
}

#[tokio::test]
async fn a_streamed_five_mib_body_round_trips() {
    let env = proxy_env().await;
    let response = env
        .app
        .client
        .post(env.proxy_url("alice/echo-body/upload"))
        .bearer_auth(&env.proxy_key)
        .header("content-type", "application/octet-stream")
        .body(chunked(5 * MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 5 * MIB);
    assert!(bytes.as_ref() == chunked_bytes(5 * MIB).as_slice());
    let recorded = env.provider.requests_to("/api/echo-body/upload");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body_len, 5 * MIB);
}

#[tokio::test]
async fn a_body_over_ten_mib_gets_413_and_never_reaches_the_api() {
    let env = proxy_env().await;
    let declared = env
        .call(
            Method::POST,
            "alice/echo-body",
            &env.proxy_key,
            Some(vec![b'a'; 11 * MIB]),
        )
        .await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_code(&declared), "payload_too_large");

    let streamed = read(
        env.app
            .client
            .put(env.proxy_url("alice/echo-body"))
            .bearer_auth(&env.proxy_key)
            .body(chunked(11 * MIB))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_code(&streamed), "payload_too_large");
    assert_eq!(env.provider.api_calls(), 0);
    let outcomes: Vec<Value> = env
        .proxy_audit()
        .await
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["payload_too_large", "payload_too_large"]);
}

#[tokio::test]
async fn an_upstream_401_causes_one_refresh_and_one_retry() {
    let env = proxy_env().await;
    let before = env.current_token();
    env.provider.refuse_api_tokens(1);
    let answer = env
        .call(
            Method::POST,
            "alice/user",
            &env.proxy_key,
            Some(b"{\"name\":\"x\"}".to_vec()),
        )
        .await;
    let echo = answer.expect_json(StatusCode::OK);
    let after = env.current_token();
    assert_ne!(before, after);
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {after}"));
    assert_eq!(echo["body"], "{\"name\":\"x\"}");
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(env.provider.api_calls(), 2);
}

#[tokio::test]
async fn a_second_upstream_401_goes_back_to_the_caller_after_one_refresh() {
    let env = proxy_env().await;
    env.provider.refuse_api_tokens(2);
    let answer = env.get("alice/user").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_token");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"fake-provider\", error=\"invalid_token\"")
    );
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(env.provider.api_calls(), 2);
    let audit = env.proxy_audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["outcome"], "status:401");
}

#[tokio::test]
async fn a_streamed_body_over_the_replay_limit_is_not_retried_after_a_401() {
    let env = proxy_env().await;
    env.provider.refuse_api_tokens(1);
    let answer = read(
        env.app
            .client
            .post(env.proxy_url("alice/echo-body"))
            .bearer_auth(&env.proxy_key)
            .body(chunked(2 * MIB))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.provider.refresh_calls(), 0);
    assert_eq!(env.provider.api_calls(), 1);
}

#[tokio::test]
async fn an_upstream_redirect_to_another_host_is_returned_and_not_followed() {
    let env = proxy_env().await;
    let port = env.provider.local_addr().unwrap().port();
    let elsewhere = format!("http://localhost:{port}/api/landing");
    let answer = env
        .get(&format!("alice/redirect?to={}", urlencode(&elsewhere)))
        .await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert_eq!(answer.header("location"), Some(elsewhere.as_str()));
    assert_eq!(env.provider.requests_to("/api/redirect").len(), 1);
    assert!(env.provider.requests_to("/api/landing").is_empty());
    assert_eq!(env.provider.api_calls(), 1);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn responses_over_the_limit_are_refused_when_announced_and_cut_off_when_streamed() {
    let env = proxy_env().await;
    let announced = env.get(&format!("alice/bytes?n={}", 11 * MIB)).await;
    assert_eq!(announced.status, StatusCode::BAD_GATEWAY);
    assert_eq!(problem_code(&announced), "response_too_large");

    let within = env
        .get(&format!("alice/bytes?n={}&chunked=true", MIB))
        .await;
    assert_eq!(within.status, StatusCode::OK);
    assert_eq!(within.text.len(), MIB);

    // A body without Content-Length that grows past the limit: the status line has
    // gone out already, so the caller sees the body end early with an error.
    let streamed = env
        .app
        .client
        .get(env.proxy_url(&format!("alice/bytes?n={}&chunked=true", 11 * MIB)))
        .bearer_auth(&env.proxy_key)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::OK);
    assert!(streamed.bytes().await.is_err());

    let metrics = send(&env.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_responses_truncated_total 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_requests_total{outcome=\"response_too_large\"} 1")
    );
    assert!(
        metrics
            .text
            .contains("tokenwarden_proxy_requests_total{outcome=\"2xx\"} 2")
    );
    assert!(!metrics.text.contains("alice"));
}

/// An app on a custom provider with `api_base_url`, and an imported connection to it.
async fn custom_connection(
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

#[tokio::test]
async fn an_unreachable_api_gets_502_and_a_provider_without_api_gets_409() {
    let env = proxy_env().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let imported = custom_connection(
        &env.app,
        &env.vault.admin_key,
        &env.connect_key,
        "gone",
        Some(&format!("http://{closed}/api")),
        "bob",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let unreachable = env.get("bob/x").await;
    assert_problem(
        &unreachable,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "the provider's API could not be reached",
    );

    let imported = custom_connection(
        &env.app,
        &env.vault.admin_key,
        &env.connect_key,
        "noapi",
        None,
        "carol",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    assert_problem(
        &env.get("carol/x").await,
        StatusCode::CONFLICT,
        "proxy_unavailable",
        "the connection's provider has no API base URL, so it cannot be proxied to",
    );
}

#[tokio::test]
async fn a_provider_api_slower_than_the_timeout_gets_504() {
    let env = proxy_env_with(SpawnOptions {
        proxy: Some(ProxySettings {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ..ProxySettings::default()
        }),
        ..SpawnOptions::default()
    })
    .await;
    let answer = env.get("alice/hang").await;
    assert_problem(
        &answer,
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_timeout",
        "the provider's API did not answer in time",
    );
}

#[tokio::test]
async fn the_base_url_header_must_name_a_listed_base() {
    let env = proxy_env().await;
    let base = format!("{}", url::Url::parse(&env.provider.api_base_url()).unwrap());
    for named in [base.as_str(), env.provider.api_base_url().as_str()] {
        let answer = read(
            env.app
                .client
                .get(env.proxy_url("alice/user"))
                .bearer_auth(&env.proxy_key)
                .header("x-tokenwarden-base-url", named)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let echo = answer.expect_json(StatusCode::OK);
        assert_eq!(echo["headers"]["x-tokenwarden-base-url"], Value::Null);
    }
    let refused = read(
        env.app
            .client
            .get(env.proxy_url("alice/user"))
            .bearer_auth(&env.proxy_key)
            .header("x-tokenwarden-base-url", "http://127.0.0.1:1/api")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "x-tokenwarden-base-url must be exactly one of the provider's api_base_urls",
    );
    assert_eq!(env.provider.api_calls(), 2);
}

#[tokio::test]
async fn proxy_read_and_admin_keys_may_proxy_and_connect_keys_may_not() {
    let env = proxy_env().await;
    // `Roles::allows` gives admin every role, as everywhere else in the API.
    for key in [&env.proxy_key, &env.read_key, &env.vault.admin_key] {
        let answer = env.call(Method::GET, "alice/user", key, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let answer = env
        .call(Method::GET, "alice/user", &env.connect_key, None)
        .await;
    assert_forbidden(&answer, "this API key lacks the proxy or read role");
    assert_eq!(env.provider.api_calls(), 3);
}

#[tokio::test]
async fn scoped_keys_are_refused_outside_their_scope() {
    let env = proxy_env().await;
    let env = &env;
    let scoped = |scope: Value| async move {
        send(
            &env.app,
            Method::POST,
            "/v1/api-keys",
            Auth::Bearer(&env.vault.admin_key),
            Some(&json!({"name": "scoped", "roles": ["proxy"], "scope": scope})),
        )
        .await
        .expect_json(StatusCode::CREATED)["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let inside = scoped(json!({"apps": ["fake"], "connections": ["ali*"]})).await;
    let other_connection = scoped(json!({"connections": ["bob*"]})).await;
    let other_app = scoped(json!({"apps": ["github"]})).await;
    assert_eq!(
        env.call(Method::GET, "alice/user", &inside, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_forbidden(
        &env.call(Method::GET, "alice/user", &other_connection, None)
            .await,
        "this API key's scope does not include that connection",
    );
    // Follows the other connection endpoints: an app outside the scope hides the
    // connection altogether.
    assert_problem(
        &env.call(Method::GET, "alice/user", &other_app, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    assert_eq!(env.provider.api_calls(), 1);
}

#[tokio::test]
async fn a_proxy_only_key_never_receives_a_token() {
    let env = proxy_env().await;
    let token = send(
        &env.app,
        Method::GET,
        "/v1/connections/alice/token",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_forbidden(&token, "this API key lacks the read role");
    let refresh = send(
        &env.app,
        Method::POST,
        "/v1/connections/alice/refresh",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_forbidden(&refresh, "this API key lacks the connect or refresh role");
    let listed = send(
        &env.app,
        Method::GET,
        "/v1/connections/alice",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    for secret in env.provider.issued_secrets() {
        assert!(!token.text.contains(&secret));
        assert!(!refresh.text.contains(&secret));
        assert!(!listed.text.contains(&secret));
    }
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test]
async fn blocked_apps_reauth_and_deleted_connections_are_refused() {
    let env = proxy_env().await;
    let blocked = send(
        &env.app,
        Method::PATCH,
        "/v1/apps/fake",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"status": "blocked"})),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.text);
    assert_eq!(problem_code(&env.get("alice/user").await), "app_blocked");
    send(
        &env.app,
        Method::PATCH,
        "/v1/apps/fake",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"status": "active"})),
    )
    .await
    .expect_json(StatusCode::OK);

    env.provider.revoke_grant(env.grant().id);
    let refused = send(
        &env.app,
        Method::POST,
        "/v1/connections/alice/refresh",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    assert_eq!(problem_code(&refused), "needs_reauth");
    let answer = env.get("alice/user").await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(problem_code(&answer), "needs_reauth");

    let deleted = send(
        &env.app,
        Method::DELETE,
        "/v1/connections/alice?force=true",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_problem(
        &env.get("alice/user").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    assert_eq!(env.provider.api_calls(), 0);
    let outcomes: Vec<Value> = env
        .proxy_audit()
        .await
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["app_blocked", "needs_reauth", "not_found"]);
}

#[tokio::test]
async fn every_call_writes_one_audit_record_without_query_or_token() {
    let env = proxy_env().await;
    env.get("alice/user/repos?access_token=s3cret-in-query")
        .await;
    let records = env.proxy_audit().await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["target"], "alice GET /user/repos");
    assert_eq!(record["outcome"], "status:200");
    let all = env.audit().await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("s3cret-in-query"));
    for secret in env.provider.issued_secrets() {
        assert!(!text.contains(&secret));
    }
    // The proxy reads the token without it counting as a token read by the caller.
    assert!(all.iter().all(|r| r["action"] != "connection.token_read"));
}

// ---------------------------------------------------------------------------------
// SSRF: a server that refuses non-global addresses, with a resolver the test controls.

/// Answers names from a table the test changes, and records every lookup: a name that
/// was looked up but refused proves that the policy, not a failed dial, stopped it.
#[derive(Debug, Default)]
struct TableResolver {
    answers: Mutex<HashMap<String, Vec<IpAddr>>>,
    asked: Mutex<Vec<String>>,
}

impl HostResolver for TableResolver {
    fn lookup(&self, host: &str) -> Lookup {
        self.asked.lock().unwrap().push(host.to_owned());
        let answer = self.answers.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
        })
    }
}

impl TableResolver {
    fn set(&self, host: &str, addrs: &[&str]) {
        self.answers.lock().unwrap().insert(
            host.to_owned(),
            addrs.iter().map(|a| a.parse().unwrap()).collect(),
        );
    }

    fn take_asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

/// A request line sent as it is, so that the client cannot normalise the path first.
async fn raw_get(app: &TestApp, target: &str, key: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

enum Vector {
    /// The API host resolves to these addresses.
    Resolves(&'static [&'static str]),
    /// A custom provider with this API base URL (and the same URL named in
    /// `X-Tokenwarden-Base-Url` on an existing connection).
    BaseUrl(&'static str),
    /// This raw path after `/v1/proxy/victim`.
    Path(&'static str),
}

const API_HOST: &str = "api.ssrf.test";

#[tokio::test]
async fn ssrf_vectors_are_refused_before_any_connection_is_made() {
    use Vector::*;
    let resolver = Arc::new(TableResolver::default());
    let app = spawn_app_with(SpawnOptions {
        strict_outbound: true,
        proxy: Some(ProxySettings {
            resolver: Some(resolver.clone()),
            ..ProxySettings::default()
        }),
        ..SpawnOptions::default()
    })
    .await;
    let vault = app.vault("mallory@example.com").await;
    let connect_key = role_key(&app, &vault.admin_key, "connect").await;
    let proxy_key = role_key(&app, &vault.admin_key, "proxy").await;
    let imported = custom_connection(
        &app,
        &vault.admin_key,
        &connect_key,
        "ssrf",
        Some(&format!("https://{API_HOST}/v1")),
        "victim",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    resolver.take_asked();

    let table: Vec<(&str, Vector)> = vec![
        ("loopback", Resolves(&["127.0.0.1"])),
        ("loopback elsewhere in 127/8", Resolves(&["127.53.0.9"])),
        ("IPv6 loopback", Resolves(&["::1"])),
        ("IPv4-mapped loopback", Resolves(&["::ffff:127.0.0.1"])),
        (
            "IPv4-mapped metadata",
            Resolves(&["::ffff:169.254.169.254"]),
        ),
        ("IPv4-compatible loopback", Resolves(&["::127.0.0.1"])),
        ("NAT64 of loopback", Resolves(&["64:ff9b::7f00:1"])),
        ("IPv6 unspecified", Resolves(&["::"])),
        ("IPv4 unspecified", Resolves(&["0.0.0.0"])),
        ("unique local fc00::/7", Resolves(&["fc00::1"])),
        ("AWS IPv6 metadata", Resolves(&["fd00:ec2::254"])),
        ("link-local fe80::/10", Resolves(&["fe80::1"])),
        ("private 10/8", Resolves(&["10.0.0.1"])),
        ("private 172.16/12", Resolves(&["172.16.5.4"])),
        ("private 192.168/16", Resolves(&["192.168.1.1"])),
        ("CGNAT 100.64/10", Resolves(&["100.64.0.1"])),
        ("cloud metadata", Resolves(&["169.254.169.254"])),
        ("multicast", Resolves(&["224.0.0.1"])),
        ("broadcast", Resolves(&["255.255.255.255"])),
        ("documentation", Resolves(&["192.0.2.10"])),
        (
            "public and private mixed",
            Resolves(&["8.8.8.8", "10.0.0.1"]),
        ),
        ("decimal loopback", BaseUrl("https://2130706433/")),
        ("hex loopback", BaseUrl("https://0x7f000001/")),
        ("octal loopback", BaseUrl("https://0177.0.0.1/")),
        ("short loopback", BaseUrl("https://127.1/")),
        ("bracketed IPv6 loopback", BaseUrl("https://[::1]/")),
        (
            "bracketed mapped loopback",
            BaseUrl("https://[::ffff:127.0.0.1]/"),
        ),
        (
            "bracketed mapped metadata",
            BaseUrl("https://[::ffff:169.254.169.254]/"),
        ),
        (
            "literal metadata",
            BaseUrl("https://169.254.169.254/latest/"),
        ),
        ("literal unspecified", BaseUrl("https://0.0.0.0/")),
        ("plain http", BaseUrl("http://api.example.com/")),
        ("dot-dot", Path("/../../admin")),
        ("dot", Path("/./x")),
        ("encoded dot-dot", Path("/%2e%2e/admin")),
        ("encoded dot-dot upper case", Path("/%2E%2E/admin")),
        ("half-encoded dot-dot", Path("/.%2e/admin")),
        ("double-encoded dot-dot", Path("/%252e%252e/admin")),
        ("encoded slash", Path("/x%2f..%2fadmin")),
        ("encoded backslash", Path("/..%5cadmin")),
        ("backslash", Path("/..\\admin")),
        ("double slash", Path("//evil.test/x")),
        ("encoded NUL", Path("/x%00")),
        ("encoded CRLF", Path("/x%0d%0aHost:evil.test")),
    ];
    assert!(table.len() >= 25);

    for (name, vector) in &table {
        match vector {
            Resolves(addrs) => {
                resolver.set(API_HOST, addrs);
                let (status, text) = raw_get(&app, "/v1/proxy/victim/users", &proxy_key).await;
                assert_eq!(status, 403, "{name}: {text}");
                assert!(
                    text.contains("\"code\":\"upstream_blocked\""),
                    "{name}: {text}"
                );
                // Looked up and refused: a dial to these (unreachable) addresses would
                // have answered 502 or 504 instead.
                assert_eq!(resolver.take_asked(), [API_HOST], "{name}");
            }
            BaseUrl(url) => {
                let key = format!("lit{}", table.iter().position(|(n, _)| n == name).unwrap());
                let created =
                    custom_connection(&app, &vault.admin_key, &connect_key, &key, Some(url), &key)
                        .await;
                assert_eq!(
                    created.status,
                    StatusCode::BAD_REQUEST,
                    "{name}: {}",
                    created.text
                );
                assert_eq!(problem_code(&created), "invalid_request", "{name}");
                let named = read(
                    app.client
                        .get(app.url("/v1/proxy/victim/users"))
                        .bearer_auth(&proxy_key)
                        .header("x-tokenwarden-base-url", *url)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(named.status, StatusCode::BAD_REQUEST, "{name}");
                assert_eq!(problem_code(&named), "invalid_request", "{name}");
                assert!(resolver.take_asked().is_empty(), "{name}");
            }
            Path(path) => {
                resolver.set(API_HOST, &["127.0.0.1"]);
                let (status, text) =
                    raw_get(&app, &format!("/v1/proxy/victim{path}"), &proxy_key).await;
                assert_eq!(status, 400, "{name}: {text}");
                // hyper refuses a few of these itself, before any handler runs.
                if text.contains("problem+json") {
                    assert!(
                        text.contains("\"code\":\"invalid_request\""),
                        "{name}: {text}"
                    );
                }
                assert!(
                    resolver.take_asked().is_empty(),
                    "{name}: the host was looked up"
                );
            }
        }
    }
}
