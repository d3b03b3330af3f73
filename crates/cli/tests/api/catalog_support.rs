//! What the catalog tests share: each built-in provider's documented behaviour as
//! `catalog/expectations.toml` states it, the fake provider set up to play it, the
//! built-in entries pointed at that fake, and a JSON API call.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokenwarden_fake_provider::{
    ClientAuthPolicy, ClientRegistration, ExpiresIn, FakeProvider, FakeProviderConfig, Persona,
    PersonaRevoke, RedirectIss, TokenSource,
};
use tokenwarden_oauth::ProviderSpec;
use tokenwarden_testing::TestApp;
use url::Url;

use crate::helpers::{Auth, fetch};

pub const CLIENT_ID: &str = "catalog-client";
pub const CLIENT_SECRET: &str = "catalog-secret";

/// What one provider's documentation says, as the test checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Connect-session parameters to give.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Path of the authorization endpoint (host first).
    pub authorize_path: String,
    /// Authorization parameters that must be present with these values.
    #[serde(default)]
    pub authorize: BTreeMap<String, String>,
    /// Whether the authorization request carries a PKCE S256 challenge.
    pub pkce: bool,
    pub token_path: String,
    /// `form` or `json`.
    pub token_body: String,
    /// `basic` or `post`.
    pub client_auth: String,
    /// How `expires_in` comes: `number`, `string` or `omitted`.
    #[serde(default = "number")]
    pub expires_in: String,
    /// Whether the connection's stored token has an expiry.
    pub expires: bool,
    /// Members the provider adds to its token responses.
    #[serde(default)]
    pub response_extra: Map<String, Value>,
    /// The token fields come nested under this member.
    #[serde(default)]
    pub nest: Option<String>,
    /// Parameters added to the redirect.
    #[serde(default)]
    pub redirect_params: BTreeMap<String, String>,
    /// `extras` the token call must answer.
    #[serde(default)]
    pub extras: Map<String, Value>,
    /// `rotates`, `keeps` (no new refresh token), or `none` (no refresh token at all).
    pub refresh: String,
    #[serde(default)]
    pub refresh_path: Option<String>,
    /// The `scope` the refresh request must repeat, if any.
    #[serde(default)]
    pub refresh_scope: Option<String>,
    #[serde(default)]
    pub revoke: Option<Revoke>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub method: String,
    /// `{client_id}` and `{token}` stand for the values sent.
    pub path: String,
    /// `form:<name>`, `json:<name>`, `query:<name>`, `bearer` or `path`.
    pub token_in: String,
    /// `basic`, `post`, `client_id` or `none`.
    pub auth: String,
    /// Which token is revoked first: `refresh` or `access`.
    pub token: String,
    /// Whether `token_type_hint` is sent.
    #[serde(default)]
    pub hint: bool,
    /// How many revocation requests are made.
    #[serde(default = "one")]
    pub count: usize,
}

fn number() -> String {
    "number".to_owned()
}

fn one() -> usize {
    1
}

pub fn expectations() -> BTreeMap<String, Expectation> {
    toml::from_str(include_str!("catalog/expectations.toml")).unwrap()
}

/// `https://host/path?q` → `{base}/host/path?q`, also for `{param}` hosts.
fn point_at(url: &Url, base: &str) -> Url {
    let host = url.host_str().unwrap();
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Url::parse(&format!("{base}/{host}{}{query}", url.path())).unwrap()
}

pub fn pointed(spec: &ProviderSpec, base: &str) -> ProviderSpec {
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

pub async fn fake_for(e: &Expectation) -> FakeProvider {
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

pub async fn call(
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
