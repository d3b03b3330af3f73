//! Catalog conformance: every built-in provider, played by the fake provider as its
//! documentation describes it (`catalog/expectations.toml`, written from the docs apart
//! from the catalog entries), through connect → token read → forced refresh → delete,
//! asserting the exact requests tokenwarden sent and what it stored.
//!
//! The built-in entries are loaded unchanged except that every `https://host/path` is
//! pointed at the provider's fake as `{fake}/host/path`, so the asserted paths are the
//! catalog's real paths.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{FakeProvider, RecordedRequest};
use tokenwarden_oauth::builtin_providers;
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};
use url::Url;

use crate::catalog_support::{
    CLIENT_ID, CLIENT_SECRET, Expectation, call, expectations, fake_for, pointed,
};
use crate::helpers::{Auth, fetch};
use crate::oauth_support::browser;

fn pairs(r: &RecordedRequest) -> BTreeMap<String, String> {
    match &r.json {
        Some(Value::Object(m)) if r.form.is_empty() => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => r.form.iter().cloned().collect(),
    }
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    )
}

/// The request's client authentication matches `how`; returns the parameters without
/// the client's.
fn check_client_auth(
    key: &str,
    r: &RecordedRequest,
    how: &str,
    mut params: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let header = r.header("authorization").map(str::to_owned);
    match how {
        "basic" => assert_eq!(header, Some(basic()), "{key}: Basic client auth"),
        "post" => {
            assert_eq!(header, None, "{key}: no Authorization header");
            assert_eq!(
                params.remove("client_id").as_deref(),
                Some(CLIENT_ID),
                "{key}"
            );
            assert_eq!(
                params.remove("client_secret").as_deref(),
                Some(CLIENT_SECRET),
                "{key}"
            );
        }
        "client_id" => {
            assert_eq!(
                params.remove("client_id").as_deref(),
                Some(CLIENT_ID),
                "{key}"
            );
            assert!(!params.contains_key("client_secret"), "{key}: no secret");
        }
        _ => {}
    }
    params
}

fn content_type(r: &RecordedRequest) -> &str {
    r.header("content-type").unwrap_or_default()
}

/// One provider: connect, read, refresh, delete, with every request checked.
async fn conform(
    app: Arc<TestApp>,
    admin: String,
    key: String,
    e: Expectation,
    fake: FakeProvider,
) {
    let base = fake.base_url().to_owned();
    // connect
    let (status, session) = call(
        &app,
        Method::POST,
        "/v1/connect-sessions",
        &admin,
        Some(json!({"app": key, "connection_id": key, "params": e.params})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}: {session}");
    let auth_url = Url::parse(session["authorization_url"].as_str().unwrap()).unwrap();
    assert_eq!(
        auth_url.as_str().split('?').next().unwrap(),
        format!("{base}{}", e.authorize_path),
        "{key}: authorization endpoint"
    );
    let query: BTreeMap<String, String> = auth_url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("response_type").map(String::as_str),
        Some("code"),
        "{key}"
    );
    assert_eq!(
        query.get("client_id").map(String::as_str),
        Some(CLIENT_ID),
        "{key}"
    );
    for (name, value) in &e.authorize {
        assert_eq!(
            query.get(name),
            Some(value),
            "{key}: authorize parameter {name}"
        );
    }
    assert_eq!(
        query.get("code_challenge_method").map(String::as_str),
        e.pkce.then_some("S256"),
        "{key}: PKCE"
    );
    let callback = crate::oauth_support::follow_authorization(&browser(), auth_url.as_str()).await;
    let page = fetch(&browser(), Method::GET, &callback, Auth::None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{key}: callback {}", page.text);

    let exchange = fake.requests_to(&e.token_path);
    assert_eq!(exchange.len(), 1, "{key}: one code exchange");
    let r = &exchange[0];
    assert_eq!(r.method, "POST", "{key}");
    let want_type = if e.token_body == "json" {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    assert_eq!(
        content_type(r),
        want_type,
        "{key}: token request content type"
    );
    let mut params = check_client_auth(&key, r, &e.client_auth, pairs(r));
    let verifier = params.remove("code_verifier");
    assert_eq!(verifier.is_some(), e.pkce, "{key}: code_verifier");
    let grant = fake.latest_grant().unwrap();
    assert_eq!(
        params,
        BTreeMap::from([
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), grant.code.clone()),
            (
                "redirect_uri".to_owned(),
                query.get("redirect_uri").cloned().unwrap()
            ),
        ]),
        "{key}: code exchange parameters"
    );

    // read
    let path = format!("/v1/connections/{key}/token");
    let (status, token) = call(&app, Method::GET, &path, &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{key}: {token}");
    assert_eq!(
        token["access_token"].as_str(),
        grant.access_tokens.first().map(String::as_str),
        "{key}: stored access token"
    );
    assert_eq!(
        token["expires_at"].is_string(),
        e.expires,
        "{key}: expiry {token}"
    );
    assert_eq!(
        token["extras"],
        Value::Object(e.extras.clone()),
        "{key}: extras"
    );

    // refresh
    if e.refresh != "none" {
        let first_rt = grant.refresh_tokens.first().cloned().unwrap();
        let refresh_path = e
            .refresh_path
            .clone()
            .unwrap_or_else(|| e.token_path.clone());
        for round in 0..2 {
            let (status, refreshed) = call(
                &app,
                Method::GET,
                &format!("{path}?force_refresh=true"),
                &admin,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{key}: refresh {refreshed}");
            let g = fake.latest_grant().unwrap();
            assert_eq!(
                refreshed["access_token"].as_str(),
                g.access_token.as_deref(),
                "{key}"
            );
            let sent: Vec<RecordedRequest> = fake
                .requests_to(&refresh_path)
                .into_iter()
                .filter(|r| pairs(r).get("grant_type").map(String::as_str) == Some("refresh_token"))
                .collect();
            let r = sent.last().unwrap();
            let mut params = check_client_auth(&key, r, &e.client_auth, pairs(r));
            assert_eq!(content_type(r), want_type, "{key}: refresh content type");
            // The second refresh shows which refresh token was stored by the first.
            let expected_rt = if round == 1 && e.refresh == "rotates" {
                g.refresh_tokens[1].clone()
            } else {
                first_rt.clone()
            };
            assert_eq!(
                params.remove("refresh_token"),
                Some(expected_rt),
                "{key}: refresh token sent (round {round})"
            );
            assert_eq!(
                params.remove("scope"),
                e.refresh_scope.clone(),
                "{key}: refresh scope"
            );
            assert_eq!(
                params,
                BTreeMap::from([("grant_type".to_owned(), "refresh_token".to_owned())]),
                "{key}: refresh parameters"
            );
        }
    }

    // delete (revocation)
    let before = fake.latest_grant().unwrap();
    let answer = fetch(
        &app.client,
        Method::DELETE,
        &app.url(&format!("/v1/connections/{key}")),
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::NO_CONTENT,
        "{key}: delete {}",
        answer.text
    );
    match &e.revoke {
        None => assert_eq!(fake.revocations(), 0, "{key}: no revocation endpoint"),
        Some(rv) => {
            let revoked = fake
                .requests()
                .into_iter()
                .filter(|r| r.method == rv.method && crate::catalog::same_route(&rv.path, &r.path));
            let revoked: Vec<RecordedRequest> = revoked.collect();
            assert_eq!(revoked.len(), rv.count, "{key}: revocation requests");
            let r = &revoked[0];
            let token = if rv.token == "refresh" {
                before.refresh_token.clone().unwrap()
            } else {
                before.access_token.clone().unwrap()
            };
            let expected_path = rv
                .path
                .replace("{client_id}", CLIENT_ID)
                .replace("{token}", &token);
            assert_eq!(r.path, expected_path, "{key}: revocation path");
            let mut params = match rv.token_in.split_once(':') {
                Some(("query", _)) => r.query.iter().cloned().collect(),
                _ => pairs(r),
            };
            if rv.auth == "basic" {
                assert_eq!(
                    r.header("authorization").map(str::to_owned),
                    Some(basic()),
                    "{key}"
                );
            } else if rv.token_in == "bearer" {
                assert_eq!(
                    r.header("authorization").map(str::to_owned),
                    Some(format!("Bearer {}", before.access_token.clone().unwrap())),
                    "{key}: bearer revocation"
                );
            } else {
                params = check_client_auth(&key, r, &rv.auth, params);
                if rv.auth == "none" {
                    assert_eq!(r.header("authorization"), None, "{key}");
                }
            }
            if let Some((_, name)) = rv.token_in.split_once(':') {
                assert_eq!(
                    params.remove(name),
                    Some(token.clone()),
                    "{key}: revoked token"
                );
                let hint = params.remove("token_type_hint");
                assert_eq!(hint.is_some(), rv.hint, "{key}: token_type_hint");
            }
            assert!(
                params.is_empty(),
                "{key}: unexpected revocation parameters {params:?}"
            );
            let still_valid = fake.is_access_token_valid(before.access_token.as_deref().unwrap());
            assert!(
                !still_valid,
                "{key}: the provider no longer accepts the token"
            );
        }
    }
}

/// Whether a recorded path fits a route with `{client_id}`/`{token}` segments.
pub(crate) fn same_route(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(a, b)| a.starts_with('{') || a == b)
}

#[tokio::test]
async fn every_builtin_provider_connects_refreshes_and_revokes_as_its_documentation_says() {
    let expectations = expectations();
    let builtins = builtin_providers().unwrap();
    let keys: Vec<String> = builtins.iter().map(|d| d.key().to_string()).collect();
    assert_eq!(
        expectations.keys().cloned().collect::<Vec<_>>(),
        {
            let mut k = keys.clone();
            k.sort();
            k
        },
        "one expectation per built-in provider"
    );
    let mut fakes = BTreeMap::new();
    let mut specs = Vec::new();
    for def in &builtins {
        let e = &expectations[def.key().as_str()];
        let fake = fake_for(e).await;
        specs.push(pointed(def.spec(), fake.base_url()));
        fakes.insert(def.key().to_string(), fake);
    }
    let app = Arc::new(
        spawn_app_with(SpawnOptions {
            extra_providers: specs,
            ..SpawnOptions::default()
        })
        .await,
    );
    let vault = app.vault("catalog@example.com").await;
    for key in &keys {
        let (status, body) = call(
            &app,
            Method::POST,
            "/v1/apps",
            &vault.admin_key,
            Some(json!({"key": key, "provider": key, "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET, "scopes": []})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{key}: {body}");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (key, e) in expectations {
        let fake = fakes.remove(&key).unwrap();
        tasks.spawn(conform(app.clone(), vault.admin_key.clone(), key, e, fake));
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
        done += 1;
    }
    assert_eq!(done, keys.len());
}
