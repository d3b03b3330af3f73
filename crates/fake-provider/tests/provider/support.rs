//! Helpers: start a provider, play the browser, call the token endpoint.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use tokenwarden_fake_provider::{FakeProvider, FakeProviderConfig};
use url::Url;

pub const REDIRECT_URI: &str = "http://localhost:9999/v1/oauth/callback/app_1";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn start() -> FakeProvider {
    FakeProvider::start(FakeProviderConfig::default())
        .await
        .unwrap()
}

pub async fn start_with(config: FakeProviderConfig) -> FakeProvider {
    FakeProvider::start(config).await.unwrap()
}

/// A client that does not follow redirects, like tokenwarden's token client.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `Authorization: Basic` with id and secret form-urlencoded first
/// (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// GETs the authorization URL with these parameters (plus client_id,
/// response_type=code and the redirect URI) and returns the Location.
pub async fn authorize_raw(
    p: &FakeProvider,
    extra: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let mut url = Url::parse(&p.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", p.client_id())
        .append_pair("redirect_uri", REDIRECT_URI);
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    let response = http().get(url).send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), location)
}

/// Authorizes with PKCE, `openid offline_access`, a state and a nonce;
/// returns the code.
pub async fn authorize(p: &FakeProvider) -> String {
    let (status, location) = authorize_raw(
        p,
        &[
            ("scope", "openid offline_access"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    query(&location)["code"].clone()
}

/// POSTs a form to the token endpoint with client_secret_basic.
pub async fn token(p: &FakeProvider, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(p.token_endpoint())
        .header(
            "authorization",
            basic(p.client_id(), p.client_secret().unwrap()),
        )
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn exchange(p: &FakeProvider, code: &str) -> reqwest::Response {
    token(
        p,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn refresh(p: &FakeProvider, refresh_token: &str) -> reqwest::Response {
    token(
        p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Authorizes and exchanges; returns the JSON token response.
pub async fn connect(p: &FakeProvider) -> serde_json::Value {
    let code = authorize(p).await;
    let response = exchange(p, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

pub async fn json_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

pub fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap()
}
