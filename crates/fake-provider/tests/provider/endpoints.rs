//! Metadata, mounting under a prefix, the resource endpoints, the request log and the
//! server's lifecycle.

use axum::Router;
use reqwest::StatusCode;
use tokenwarden_fake_provider::{FakeProvider, FakeProviderConfig};

use crate::support::*;

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
