//! The whole life of a grant, metadata, mounting and the resource endpoints.

use axum::Router;
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

#[tokio::test]
async fn discovery_lists_every_endpoint_under_the_issuer() {
    let p = start().await;

    let doc: serde_json::Value = http()
        .get(p.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(doc["issuer"], p.issuer());
    assert_eq!(doc["authorization_endpoint"], p.authorization_endpoint());
    assert_eq!(doc["token_endpoint"], p.token_endpoint());
    assert_eq!(doc["revocation_endpoint"], p.revocation_endpoint());
    assert_eq!(doc["userinfo_endpoint"], p.userinfo_endpoint());
    assert_eq!(doc["jwks_uri"], p.jwks_uri());
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn a_mounted_provider_emits_urls_under_its_prefix() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/demo-provider", listener.local_addr().unwrap());
    let p = FakeProvider::mounted(FakeProviderConfig::default(), &base).unwrap();
    let app = Router::new().nest("/demo-provider", p.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let doc: serde_json::Value = http()
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = connect(&p).await;

    assert_eq!(doc["issuer"], base);
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(p.token_endpoint(), format!("{base}/token"));
    assert!(body["access_token"].is_string());
    assert_eq!(p.requests_to("/token").len(), 1);
    assert_eq!(p.local_addr(), None);
    server.abort();
}

#[tokio::test]
async fn userinfo_and_the_api_accept_only_current_access_tokens() {
    let p = start().await;
    let body = connect(&p).await;
    let at = s(&body["access_token"]).to_owned();

    let info: serde_json::Value = http()
        .get(p.userinfo_endpoint())
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "fake-user-1");

    let echo = http()
        .post(format!("{}/user/repos?per_page=5&q=a+b", p.api_base_url()))
        .bearer_auth(&at)
        .header("x-custom", "one")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), StatusCode::OK);
    let echo: serde_json::Value = echo.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/user/repos");
    assert_eq!(echo["query"], "per_page=5&q=a+b");
    assert_eq!(
        echo["query_params"],
        serde_json::json!([["per_page", "5"], ["q", "a b"]])
    );
    assert_eq!(echo["headers"]["x-custom"], "one");
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {at}"));
    assert_eq!(echo["body_len"], 5);

    let grant = p.latest_grant().unwrap();
    assert!(p.expire_access_tokens(grant.id));
    let expired = http()
        .get(format!("{}/x", p.api_base_url()))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(
        expired.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let anonymous = http()
        .get(format!("{}/x", p.api_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The refresh token still works after a forced expiry.
    let fresh: serde_json::Value = refresh(&p, s(&body["refresh_token"]))
        .await
        .json()
        .await
        .unwrap();
    let ok = http()
        .get(format!("{}/x", p.api_base_url()))
        .bearer_auth(s(&fresh["access_token"]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(p.revoke_grant(grant.id));
    assert!(!p.is_access_token_valid(s(&fresh["access_token"])));
    assert_eq!(p.api_calls(), 4);
}

#[tokio::test]
async fn the_request_log_records_exact_token_requests_and_issued_secrets_are_listed() {
    let p = start().await;
    let body = connect(&p).await;

    let requests = p.requests_to("/token");

    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.form_param("grant_type"), Some("authorization_code"));
    assert_eq!(r.form_param("code_verifier"), Some(VERIFIER));
    assert_eq!(r.form_param("redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(
        r.header("Authorization"),
        Some(basic(p.client_id(), "fake-client-secret").as_str())
    );
    let authorize = &p.requests_to("/authorize")[0];
    assert_eq!(authorize.query_param("state"), Some("st-1"));
    let secrets = p.issued_secrets();
    assert!(secrets.iter().any(|v| v == s(&body["access_token"])));
    assert!(secrets.iter().any(|v| v == s(&body["refresh_token"])));
    assert!(secrets.iter().any(|v| v == s(&body["id_token"])));
    assert!(secrets.iter().any(|v| v.starts_with("fake_code_")));
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let p = start().await;
    let url = p.discovery_url();

    drop(p);

    let mut stopped = false;
    for _ in 0..40 {
        if http().get(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(stopped);
}

#[tokio::test]
async fn the_request_log_keeps_only_its_capacity() {
    let p = start_with(FakeProviderConfig {
        request_log_capacity: 2,
        ..FakeProviderConfig::default()
    })
    .await;

    for path in ["/jwks", "/userinfo", "/.well-known/openid-configuration"] {
        http()
            .get(format!("{}{path}", p.base_url()))
            .send()
            .await
            .unwrap();
    }

    let paths: Vec<String> = p.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/userinfo", "/.well-known/openid-configuration"]);
    assert!(format!("{p:?}").starts_with("FakeProvider { base_url: \"http://127.0.0.1:"));
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let p = start().await;
    let url = p.discovery_url();

    p.shutdown().await;

    assert!(http().get(url).send().await.is_err());
}
