//! The whole life of a grant: authorization, code exchange, refresh, reuse and
//! revocation, and the authorization endpoint's redirects and consent page.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use tokenwarden_fake_provider::{
    AuthorizeMode, ClientRegistration, FakeProvider, FakeProviderConfig, KEY_ID,
};

use crate::support::*;

#[tokio::test]
async fn authorize_token_refresh_reuse_and_revoke_follow_the_rfcs() {
    let p = start().await;

    // Authorize: the redirect carries code, state and iss (RFC 9207).
    let (status, location) = authorize_raw(
        &p,
        &[
            ("scope", "openid offline_access"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let params = query(&location.unwrap());
    assert!(params["code"].starts_with("fake_code_"));
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], p.issuer());
    let auth = p.last_authorization().unwrap();
    assert_eq!(auth.scope.as_deref(), Some("openid offline_access"));
    assert_eq!(auth.nonce.as_deref(), Some("n-1"));
    assert_eq!(auth.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(auth.code_challenge_method.as_deref(), Some("S256"));
    assert!(
        auth.params
            .contains(&("access_type".into(), "offline".into()))
    );

    // Code exchange.
    let response = exchange(&p, &params["code"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    let at1 = s(&body["access_token"]).to_owned();
    let rt1 = s(&body["refresh_token"]).to_owned();
    assert!(at1.starts_with("fake_at_"));
    assert!(rt1.starts_with("fake_rt_"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid offline_access");
    let grant = p.latest_grant().unwrap();
    assert_eq!(grant.access_token.as_deref(), Some(at1.as_str()));
    assert_eq!(grant.refresh_token.as_deref(), Some(rt1.as_str()));
    assert_eq!(grant.code, params["code"]);

    // The id_token verifies against /jwks.
    let jwks: JwkSet = http()
        .get(p.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(KEY_ID).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[p.client_id()]);
    validation.set_issuer(&[p.issuer()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        s(&body["id_token"]),
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["sub"], "fake-user-1");
    assert_eq!(claims["aud"], p.client_id());

    // Refresh rotates both tokens.
    let body: serde_json::Value = refresh(&p, &rt1).await.json().await.unwrap();
    let at2 = s(&body["access_token"]).to_owned();
    let rt2 = s(&body["refresh_token"]).to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(
        p.grant(grant.id).unwrap().refresh_token.as_deref(),
        Some(rt2.as_str())
    );
    assert!(
        p.is_access_token_valid(&at1),
        "old access tokens live until they expire"
    );
    assert_eq!((p.refresh_calls(), p.successful_refreshes()), (1, 1));

    // Reusing the rotated token revokes the grant.
    let (status, error) = json_error(refresh(&p, &rt1).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let g = p.grant(grant.id).unwrap();
    assert!(g.revoked);
    assert_eq!(g.refresh_token, None);
    assert!(!p.is_access_token_valid(&at2));
    assert_eq!(json_error(refresh(&p, &rt2).await).await.1, "invalid_grant");
    assert_eq!(p.reuse_detections(), 1);

    // A fresh grant, then RFC 7009 revocation of its refresh token.
    let body = connect(&p).await;
    let at = s(&body["access_token"]);
    let rt = s(&body["refresh_token"]);
    let revoke = |token: String| {
        let p = &p;
        async move {
            http()
                .post(p.revocation_endpoint())
                .header(
                    "authorization",
                    basic(p.client_id(), p.client_secret().unwrap()),
                )
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(revoke(rt.to_owned()).await, StatusCode::OK);
    assert!(!p.is_access_token_valid(at));
    assert_eq!(json_error(refresh(&p, rt).await).await.1, "invalid_grant");
    assert_eq!(revoke("fake_rt_unknown".to_owned()).await, StatusCode::OK);
    assert_eq!(p.revocations(), 2);
    assert_eq!(p.code_exchanges(), 2);
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_the_tokens_it_produced() {
    let p = start().await;
    let code = authorize(&p).await;
    let body: serde_json::Value = exchange(&p, &code).await.json().await.unwrap();

    let (status, error) = json_error(exchange(&p, &code).await).await;

    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(!p.is_access_token_valid(s(&body["access_token"])));
    assert_eq!(
        json_error(refresh(&p, s(&body["refresh_token"])).await)
            .await
            .1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_token_request_must_repeat_the_authorize_redirect_uri() {
    let p = start().await;
    let code = authorize(&p).await;

    let response = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9999/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;

    assert_eq!(json_error(response).await.1, "invalid_grant");
    assert!(p.grants().is_empty());
}

#[tokio::test]
async fn a_registered_redirect_uri_must_match_exactly_and_errors_are_not_redirected() {
    let client = ClientRegistration::new("c1", "s1").redirect_uri(REDIRECT_URI);
    let p = start_with(FakeProviderConfig::with_client(client)).await;

    let (ok, _) = authorize_raw(&p, &[]).await;
    let bad = http()
        .get(format!(
            "{}?response_type=code&client_id=c1&redirect_uri=http%3A%2F%2Fevil.example%2Fcb",
            p.authorization_endpoint()
        ))
        .send()
        .await
        .unwrap();
    let unknown = http()
        .get(format!(
            "{}?response_type=code&client_id=nobody",
            p.authorization_endpoint()
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(ok, StatusCode::FOUND);
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.headers().get("location").is_none());
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_wrong_response_type_is_redirected_as_unsupported_response_type() {
    let p = start().await;
    let mut url = url::Url::parse(&p.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "token")
        .append_pair("client_id", p.client_id())
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "xyz");

    let response = http().get(url).send().await.unwrap();

    let params = query(response.headers()["location"].to_str().unwrap());
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], p.issuer());
}

#[tokio::test]
async fn deny_mode_redirects_with_access_denied() {
    let p = start().await;
    p.set_authorize_mode(AuthorizeMode::Deny);

    let (status, location) = authorize_raw(&p, &[("state", "s")]).await;

    assert_eq!(status, StatusCode::FOUND);
    let params = query(&location.unwrap());
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn the_consent_page_approves_with_a_post_and_each_decision_is_single_use() {
    let p = start().await;
    p.set_authorize_mode(AuthorizeMode::ConsentPage);
    let (status, _) = authorize_raw(&p, &[("state", "s"), ("scope", "repo")]).await;
    assert_eq!(status, StatusCode::OK);
    let mut url = url::Url::parse(&p.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", p.client_id())
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "s2");
    let page = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Approve"));
    let consent = page
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let action = format!("{}/authorize/decision", p.base_url());
    assert!(page.contains(&action));

    let approve = http()
        .post(&action)
        .form(&[("consent", consent.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    let again = http()
        .post(&action)
        .form(&[("consent", consent.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();

    assert_eq!(approve.status(), StatusCode::SEE_OTHER);
    let params = query(approve.headers()["location"].to_str().unwrap());
    assert_eq!(params["state"], "s2");
    assert_eq!(params["iss"], p.issuer());
    assert_eq!(exchange_plain(&p, &params["code"]).await, StatusCode::OK);
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

async fn exchange_plain(p: &FakeProvider, code: &str) -> StatusCode {
    token(
        p,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await
    .status()
}
