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
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokenwarden_fake_provider::{
    ClientAuthPolicy, ClientRegistration, ExpiresIn, FakeProvider, FakeProviderConfig, Persona,
    PersonaRevoke, RecordedRequest, RedirectIss, TokenSource,
};
use tokenwarden_oauth::{ProviderSpec, builtin_providers};
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};
use url::Url;

use crate::helpers::{Auth, fetch};
use crate::oauth_support::browser;

const CLIENT_ID: &str = "catalog-client";
const CLIENT_SECRET: &str = "catalog-secret";

/// What one provider's documentation says, as the test checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    /// Connect-session parameters to give.
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// Path of the authorization endpoint (host first).
    authorize_path: String,
    /// Authorization parameters that must be present with these values.
    #[serde(default)]
    authorize: BTreeMap<String, String>,
    /// Whether the authorization request carries a PKCE S256 challenge.
    pkce: bool,
    token_path: String,
    /// `form` or `json`.
    token_body: String,
    /// `basic` or `post`.
    client_auth: String,
    /// How `expires_in` comes: `number`, `string` or `omitted`.
    #[serde(default = "number")]
    expires_in: String,
    /// Whether the connection's stored token has an expiry.
    expires: bool,
    /// Members the provider adds to its token responses.
    #[serde(default)]
    response_extra: Map<String, Value>,
    /// The token fields come nested under this member.
    #[serde(default)]
    nest: Option<String>,
    /// Parameters added to the redirect.
    #[serde(default)]
    redirect_params: BTreeMap<String, String>,
    /// `extras` the token call must answer.
    #[serde(default)]
    extras: Map<String, Value>,
    /// `rotates`, `keeps` (no new refresh token), or `none` (no refresh token at all).
    refresh: String,
    #[serde(default)]
    refresh_path: Option<String>,
    /// The `scope` the refresh request must repeat, if any.
    #[serde(default)]
    refresh_scope: Option<String>,
    #[serde(default)]
    revoke: Option<Revoke>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    method: String,
    /// `{client_id}` and `{token}` stand for the values sent.
    path: String,
    /// `form:<name>`, `json:<name>`, `query:<name>`, `bearer` or `path`.
    token_in: String,
    /// `basic`, `post`, `client_id` or `none`.
    auth: String,
    /// Which token is revoked first: `refresh` or `access`.
    token: String,
    /// Whether `token_type_hint` is sent.
    #[serde(default)]
    hint: bool,
    /// How many revocation requests are made.
    #[serde(default = "one")]
    count: usize,
}

fn number() -> String {
    "number".to_owned()
}

fn one() -> usize {
    1
}

fn expectations() -> BTreeMap<String, Expectation> {
    toml::from_str(include_str!("catalog/expectations.toml")).unwrap()
}

/// `https://host/path?q` → `{base}/host/path?q`, also for `{param}` hosts.
fn point_at(url: &Url, base: &str) -> Url {
    let host = url.host_str().unwrap();
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Url::parse(&format!("{base}/{host}{}{query}", url.path())).unwrap()
}

fn pointed(spec: &ProviderSpec, base: &str) -> ProviderSpec {
    let mut s = spec.clone();
    let at = |u: &Url| point_at(u, base);
    s.authorization_url = at(&s.authorization_url);
    s.token_url = at(&s.token_url);
    s.refresh_url = s.refresh_url.as_ref().map(at);
    s.revocation_url = s.revocation_url.as_ref().map(at);
    s.userinfo_url = s.userinfo_url.as_ref().map(at);
    s.jwks_uri = s.jwks_uri.as_ref().map(at);
    s.api_base_urls = s.api_base_urls.iter().map(at).collect();
    s
}

fn persona(e: &Expectation) -> Persona {
    Persona {
        authorize_path: e.authorize_path.clone(),
        token_path: e.token_path.clone(),
        refresh_path: e.refresh_path.clone(),
        token_json_body: e.token_body == "json",
        nest_tokens_under: e.nest.clone(),
        extra_response_fields: e.response_extra.clone(),
        redirect_params: e.redirect_params.clone().into_iter().collect(),
        revoke: e.revoke.as_ref().map(|r| PersonaRevoke {
            method: r.method.clone(),
            path: r.path.replace("{client_id}", CLIENT_ID),
            token: match r.token_in.split_once(':') {
                Some(("form", n)) => TokenSource::Form(n.to_owned()),
                Some(("json", n)) => TokenSource::Json(n.to_owned()),
                Some(("query", n)) => TokenSource::Query(n.to_owned()),
                _ if r.token_in == "bearer" => TokenSource::Bearer,
                _ => TokenSource::Path,
            },
        }),
    }
}

async fn fake_for(e: &Expectation) -> FakeProvider {
    let config = FakeProviderConfig {
        clients: vec![ClientRegistration::new(CLIENT_ID, CLIENT_SECRET)],
        client_auth: match e.client_auth.as_str() {
            "basic" => ClientAuthPolicy::Basic,
            _ => ClientAuthPolicy::Post,
        },
        rotate_refresh_tokens: e.refresh == "rotates",
        oidc: false,
        ..FakeProviderConfig::default()
    };
    let fake = FakeProvider::start(config).await.unwrap();
    fake.update_quirks(|q| {
        q.redirect_iss = RedirectIss::Omitted;
        q.no_refresh_token = e.refresh == "none";
        q.no_refresh_token_on_refresh = e.refresh == "keeps";
        q.expires_in = match e.expires_in.as_str() {
            "string" => ExpiresIn::String,
            "omitted" => ExpiresIn::Omitted,
            _ => ExpiresIn::Number,
        };
    });
    fake.set_persona(Some(persona(e)));
    fake
}

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

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let answer = fetch(
        &app.client,
        method,
        &app.url(path),
        Auth::Bearer(key),
        body.as_ref().map(crate::helpers::Body::json),
    )
    .await;
    let value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
    (answer.status, value)
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

#[tokio::test]
async fn templated_providers_refuse_missing_unexpected_or_unsafe_params() {
    let app = spawn_app_with(SpawnOptions::default()).await;
    let vault = app.vault("params@example.com").await;
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/apps",
        &vault.admin_key,
        Some(json!({"key": "z", "provider": "zendesk", "client_id": "c", "client_secret": "s", "scopes": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for (params, detail) in [
        (json!({}), "params.subdomain is required by this provider"),
        (
            json!({"subdomain": "acme", "tenant": "x"}),
            "params.tenant is not used by this provider",
        ),
        (
            json!({"subdomain": "evil.com/"}),
            "params.subdomain must be one DNS label",
        ),
        (
            json!({"subdomain": "a@evil"}),
            "params.subdomain must be one DNS label",
        ),
    ] {
        let (status, body) = call(
            &app,
            Method::POST,
            "/v1/connect-sessions",
            &vault.admin_key,
            Some(json!({"app": "z", "params": params})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}: {body}");
        assert_eq!(body["code"], "invalid_request");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{body}"
        );
    }
    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/connect-sessions",
        &vault.admin_key,
        Some(json!({"app": "z", "params": {"subdomain": "acme"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with("https://acme.zendesk.com/oauth/authorizations/new?"),
        "{body}"
    );
}

#[tokio::test]
async fn providers_endpoint_lists_the_catalog_with_its_quirks() {
    let app = spawn_app_with(SpawnOptions::default()).await;
    let vault = app.vault("list@example.com").await;
    let (status, list) = call(&app, Method::GET, "/v1/providers", &vault.admin_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert!(list.len() >= 30, "{}", list.len());
    let find = |k: &str| list.iter().find(|p| p["key"] == k).unwrap().clone();
    let xero = find("xero");
    assert_eq!(xero["refresh_rotates"], "always");
    assert_eq!(xero["refresh_grace_period_secs"], 1800);
    assert_eq!(xero["builtin"], true);
    assert_eq!(
        find("microsoft-tenant")["params"],
        json!({"tenant": "domain"})
    );
    assert_eq!(find("quickbooks")["redirect_extras"], json!(["realmId"]));
    assert_eq!(find("microsoft")["refresh_requires_scopes"], true);
    assert!(
        find("github")["docs"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
}
