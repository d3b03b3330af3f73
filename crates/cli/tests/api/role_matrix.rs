//! Every role and scope against every API-key endpoint, from one table. Each cell runs
//! against its own fresh target where the call changes something, so an allowed call
//! really succeeds and a refused one is refused for its role or scope alone.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, Auth};
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_testing::spawn_app;

use crate::oauth_support::{OAuthEnv, SCOPES, create_app, provider_config, role_key, send};

/// The keys, in the table's column order: roles and scope.
const KEYS: [(&str, &[&str], Option<&str>); 9] = [
    ("admin", &["admin"], None),
    ("connect", &["connect"], None),
    ("read", &["read"], None),
    ("proxy", &["proxy"], None),
    (
        "admin@other-app",
        &["admin"],
        Some(r#"{"apps": ["other"]}"#),
    ),
    (
        "connect+read@other-app",
        &["connect", "read"],
        Some(r#"{"apps": ["other"]}"#),
    ),
    (
        "read@team-*",
        &["read"],
        Some(r#"{"connections": ["team-*"]}"#),
    ),
    (
        "connect+read@c*",
        &["connect", "read"],
        Some(r#"{"connections": ["c*"]}"#),
    ),
    ("refresh", &["refresh"], None),
];

/// What a call needs made first, by the unscoped admin, so that it can succeed.
#[derive(Clone, Copy)]
enum Fresh {
    Nothing,
    ApiKey,
    App,
    Connection,
}

struct Endpoint {
    method: Method,
    /// `{fresh}` is replaced by the fresh target's id or a new unique name.
    path: &'static str,
    body: Option<&'static str>,
    fresh: Fresh,
    /// One status per key, in [`KEYS`] order.
    expect: [u16; 9],
}

#[rustfmt::skip]
fn table() -> Vec<Endpoint> {
    use Fresh::*;
    let e = |method: Method, path, body, fresh, expect| Endpoint { method, path, body, fresh, expect };
    vec![
        //                                                                                                      admin conn read prox adm@o cr@o rd@t cr@c refr
        e(Method::GET, "/v1/whoami", None, Nothing,                                                             [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        e(Method::GET, "/v1/api-keys", None, Nothing,                                                           [200, 403, 403, 403, 200, 403, 403, 403, 403]),
        e(Method::POST, "/v1/api-keys", Some(r#"{"name": "k", "roles": ["read"]}"#), Nothing,                   [201, 403, 403, 403, 403, 403, 403, 403, 403]),
        e(Method::POST, "/v1/api-keys", Some(r#"{"name": "k", "roles": ["read"], "scope": {"apps": ["other"]}}"#), Nothing,
                                                                                                                [201, 403, 403, 403, 201, 403, 403, 403, 403]),
        e(Method::DELETE, "/v1/api-keys/{fresh}", None, ApiKey,                                                 [204, 403, 403, 403, 404, 403, 403, 403, 403]),
        e(Method::GET, "/v1/providers", None, Nothing,                                                          [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        e(Method::POST, "/v1/providers", Some(r#"{"key": "{fresh}", "authorization_url": "https://auth.example.com/authorize", "token_url": "https://auth.example.com/token"}"#), Nothing,
                                                                                                                [201, 403, 403, 403, 201, 403, 403, 403, 403]),
        e(Method::GET, "/v1/apps", None, Nothing,                                                               [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        e(Method::POST, "/v1/apps", Some(r#"{"key": "{fresh}", "provider": "fake", "client_id": "id", "client_secret": "secret", "scopes": []}"#), Nothing,
                                                                                                                [201, 403, 403, 403, 403, 403, 403, 403, 403]),
        e(Method::PATCH, "/v1/apps/fake", Some(r#"{"scopes": ["profile", "email"]}"#), Nothing,                 [200, 403, 403, 403, 403, 403, 403, 403, 403]),
        e(Method::DELETE, "/v1/apps/{fresh}", None, App,                                                        [204, 403, 403, 403, 403, 403, 403, 403, 403]),
        e(Method::POST, "/v1/connect-sessions", Some(r#"{"app": "fake", "connection_id": "{fresh}"}"#), Nothing,
                                                                                                                [201, 201, 403, 403, 403, 403, 403, 201, 403]),
        e(Method::GET, "/v1/connect-sessions/{session}", None, Nothing,                                         [200, 200, 403, 403, 404, 404, 403, 200, 403]),
        e(Method::GET, "/v1/connections", None, Nothing,                                                        [200, 403, 200, 200, 200, 200, 200, 200, 200]),
        e(Method::GET, "/v1/connections/c1", None, Nothing,                                                     [200, 403, 200, 200, 404, 404, 403, 200, 403]),
        e(Method::GET, "/v1/connections/c1/token", None, Nothing,                                               [200, 403, 200, 403, 404, 404, 403, 200, 403]),
        e(Method::POST, "/v1/connections/c1/refresh", None, Nothing,                                            [200, 200, 403, 403, 404, 404, 403, 200, 200]),
        e(Method::POST, "/v1/connections", Some(r#"{"app": "fake", "connection_id": "{fresh}", "access_token": "imported-token"}"#), Nothing,
                                                                                                                [201, 201, 403, 403, 403, 403, 403, 201, 403]),
        e(Method::DELETE, "/v1/connections/{fresh}", None, Connection,                                          [204, 204, 403, 403, 404, 404, 403, 204, 403]),
        e(Method::GET, "/v1/proxy/c1/users", None, Nothing,                                                     [200, 403, 200, 200, 404, 404, 403, 200, 403]),
        e(Method::POST, "/v1/proxy/c1/users", Some(r#"{"name": "x"}"#), Nothing,                                [200, 403, 200, 200, 404, 404, 403, 200, 403]),
        e(Method::GET, "/v1/audit", None, Nothing,                                                              [200, 403, 403, 403, 403, 403, 403, 403, 403]),
    ]
}

struct Matrix {
    env: OAuthEnv,
    keys: Vec<(String, String)>,
    session: String,
    counter: std::sync::atomic::AtomicUsize,
}

impl Matrix {
    fn unique(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}{n}")
    }

    async fn admin(&self, method: Method, path: &str, body: &Value) -> Value {
        let a = send(
            &self.env.app,
            method,
            path,
            Auth::Bearer(&self.env.vault.admin_key),
            Some(body),
        )
        .await;
        a.expect_json(StatusCode::CREATED)
    }

    /// Makes what the call needs and returns the name to put in `{fresh}`.
    async fn fresh(&self, fresh: Fresh) -> String {
        match fresh {
            Fresh::Nothing => self.unique("c-m"),
            Fresh::ApiKey => {
                let k = self
                    .admin(
                        Method::POST,
                        "/v1/api-keys",
                        &json!({"name": "victim", "roles": ["read"]}),
                    )
                    .await;
                k["id"].as_str().unwrap().to_owned()
            }
            Fresh::App => {
                let key = self.unique("app-m");
                self.admin(
                    Method::POST,
                    "/v1/apps",
                    &json!({"key": key, "provider": "fake", "client_id": "id", "client_secret": "secret", "scopes": []}),
                )
                .await;
                key
            }
            Fresh::Connection => {
                let id = self.unique("c-m");
                self.admin(
                    Method::POST,
                    "/v1/connections",
                    &json!({"app": "fake", "connection_id": id, "access_token": "imported-token"}),
                )
                .await;
                id
            }
        }
    }

    async fn call(&self, endpoint: &Endpoint, key: &str) -> Answer {
        let fresh = self.fresh(endpoint.fresh).await;
        let path = endpoint
            .path
            .replace("{fresh}", &fresh)
            .replace("{session}", &self.session);
        let body: Option<Value> = endpoint
            .body
            .map(|b| serde_json::from_str(&b.replace("{fresh}", &fresh)).unwrap());
        send(
            &self.env.app,
            endpoint.method.clone(),
            &path,
            Auth::Bearer(key),
            body.as_ref(),
        )
        .await
    }
}

async fn matrix() -> Matrix {
    // The provider `fake` with an API base URL, so the proxy rows can succeed.
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let app = spawn_app().await;
    let vault = app.vault("ada@example.com").await;
    send(
        &app,
        Method::POST,
        "/v1/providers",
        Auth::Bearer(&vault.admin_key),
        Some(&json!({"key": "fake", "issuer": provider.issuer(), "api_base_url": provider.api_base_url()})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let oauth_app = create_app(&app, &vault.admin_key, "fake", &SCOPES).await;
    let connect_key = role_key(&app, &vault.admin_key, "connect").await;
    let read_key = role_key(&app, &vault.admin_key, "read").await;
    let env = OAuthEnv {
        app,
        provider,
        vault,
        connect_key,
        read_key,
        oauth_app,
    };
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let mut keys = Vec::new();
    for (name, roles, scope) in KEYS {
        let key = if name == "admin" {
            env.vault.admin_key.clone()
        } else {
            let mut body = json!({"name": name, "roles": roles});
            if let Some(scope) = scope {
                body["scope"] = serde_json::from_str(scope).unwrap();
            }
            let made = send(
                &env.app,
                Method::POST,
                "/v1/api-keys",
                Auth::Bearer(&env.vault.admin_key),
                Some(&body),
            )
            .await
            .expect_json(StatusCode::CREATED);
            made["key"].as_str().unwrap().to_owned()
        };
        keys.push((name.to_owned(), key));
    }
    let session = env
        .start_session(&json!({"app": "fake", "connection_id": "c-status"}))
        .await
        .expect_json(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Matrix {
        env,
        keys,
        session,
        counter: std::sync::atomic::AtomicUsize::new(0),
    }
}

#[tokio::test]
async fn every_role_and_scope_against_every_endpoint() {
    let m = matrix().await;
    let table = table();
    let mut wrong = Vec::new();
    for endpoint in &table {
        for (column, (name, key)) in m.keys.iter().enumerate() {
            let answer = m.call(endpoint, key).await;
            let expected = endpoint.expect[column];
            if answer.status.as_u16() != expected {
                wrong.push(format!(
                    "{} {} as {name}: expected {expected}, got {} {}",
                    endpoint.method, endpoint.path, answer.status, answer.text
                ));
            } else if expected >= 400 {
                // Refusals are problem+json with the stable code for their status.
                let body = answer.json();
                let code = match expected {
                    403 => "forbidden",
                    404 => "not_found",
                    _ => "",
                };
                if body["code"] != code {
                    wrong.push(format!(
                        "{} {} as {name}: code {}",
                        endpoint.method, endpoint.path, body["code"]
                    ));
                }
            }
        }
    }
    crate::oauth_support::report(format_args!(
        "role matrix: {} endpoints x {} keys = {} cells",
        table.len(),
        m.keys.len(),
        table.len() * m.keys.len()
    ));
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn list_endpoints_show_a_scoped_key_only_what_its_scope_allows() {
    let m = matrix().await;
    let key = |name: &str| m.keys.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let list = |path: &'static str, k: String| {
        let app = &m.env.app;
        async move {
            let v = send(app, Method::GET, path, Auth::Bearer(&k), None)
                .await
                .expect_json(StatusCode::OK);
            v.as_array().unwrap().clone()
        }
    };
    let ids = |items: Vec<Value>, field: &str| -> Vec<String> {
        items
            .iter()
            .map(|i| i[field].as_str().unwrap().to_owned())
            .collect()
    };

    assert_eq!(ids(list("/v1/apps", key("admin")).await, "key"), ["fake"]);
    assert!(list("/v1/apps", key("admin@other-app")).await.is_empty());
    assert!(
        list("/v1/connections", key("connect+read@other-app"))
            .await
            .is_empty()
    );
    assert!(list("/v1/connections", key("read@team-*")).await.is_empty());
    assert_eq!(
        ids(list("/v1/connections", key("connect+read@c*")).await, "id"),
        ["c1"]
    );
    assert_eq!(
        ids(list("/v1/connections", key("proxy")).await, "id"),
        ["c1"]
    );

    // A scoped admin sees only the keys within its scope: itself and the other
    // other-app key, not the unscoped ones.
    let names = ids(list("/v1/api-keys", key("admin@other-app")).await, "name");
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["admin@other-app", "connect+read@other-app"]);
    assert!(ids(list("/v1/api-keys", key("admin")).await, "name").len() >= KEYS.len());
}

#[tokio::test]
async fn the_refresh_call_answers_the_connection_and_never_a_token() {
    let m = matrix().await;
    let key = |name: &str| m.keys.iter().find(|(n, _)| n == name).unwrap().1.clone();
    for name in ["connect", "refresh", "connect+read@c*", "admin"] {
        let answer = send(
            &m.env.app,
            Method::POST,
            "/v1/connections/c1/refresh",
            Auth::Bearer(&key(name)),
            None,
        )
        .await;
        let body = answer.expect_json(StatusCode::OK);
        assert_eq!(body["id"], "c1", "as {name}");
        assert_eq!(body["status"], "active", "as {name}");
        assert!(body.get("access_token").is_none(), "as {name}: {body}");
        // No field of the answer holds any token the provider issued.
        let text = body.to_string();
        for token in m.env.provider.issued_secrets() {
            assert!(
                !text.contains(&token),
                "as {name}: the answer carries a token"
            );
        }
    }
    // Each refresh call left an audit record, shared outcomes included.
    let audit = send(
        &m.env.app,
        Method::GET,
        "/v1/audit?action=connection.refresh_request&limit=50",
        Auth::Bearer(&m.env.vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let requests = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "connection.refresh_request")
        .count();
    assert_eq!(requests, 4, "{audit}");
}
