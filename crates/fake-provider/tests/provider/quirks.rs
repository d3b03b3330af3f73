//! Each provider quirk, switched on at run time.

use reqwest::StatusCode;
use tokenwarden_fake_provider::{EchoSecrets, ExpiresIn, FakeProviderConfig, Quirks, RedirectIss};

use crate::support::*;

#[tokio::test]
async fn form_encoded_token_responses_and_errors() {
    let p = start().await;
    p.set_quirks(Quirks {
        form_encoded_token_response: true,
        ..Quirks::default()
    });
    let code = authorize(&p).await;

    let ok = exchange(&p, &code).await;
    let err = exchange(&p, &code).await;

    assert_eq!(
        ok.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&ok.text().await.unwrap()).unwrap();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert!(get("access_token").unwrap().starts_with("fake_at_"));
    assert_eq!(get("token_type").as_deref(), Some("Bearer"));
    assert_eq!(get("expires_in").as_deref(), Some("3600"));
    assert_eq!(get("scope").as_deref(), Some("openid offline_access"));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(
        err.text()
            .await
            .unwrap()
            .starts_with("error=invalid_grant&")
    );
}

#[tokio::test]
async fn expires_in_as_a_string_omitted_or_overridden() {
    let p = start().await;

    p.update_quirks(|q| q.expires_in = ExpiresIn::String);
    let as_string = connect(&p).await;
    p.update_quirks(|q| q.expires_in = ExpiresIn::Omitted);
    let omitted = connect(&p).await;
    p.set_quirks(Quirks {
        expires_in_override: Some(60),
        ..Quirks::default()
    });
    let custom = connect(&p).await;
    p.set_quirks(Quirks {
        expires_in_override: Some(0),
        ..Quirks::default()
    });
    let dead = connect(&p).await;

    assert_eq!(as_string["expires_in"], "3600");
    assert!(omitted.get("expires_in").is_none());
    assert_eq!(custom["expires_in"], 60);
    assert!(p.is_access_token_valid(s(&custom["access_token"])));
    assert_eq!(dead["expires_in"], 0);
    assert!(!p.is_access_token_valid(s(&dead["access_token"])));
}

#[tokio::test]
async fn no_refresh_token_on_refresh_keeps_the_old_one_valid() {
    let p = start().await;
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]).to_owned();
    p.update_quirks(|q| q.no_refresh_token_on_refresh = true);

    let first: serde_json::Value = refresh(&p, &rt).await.json().await.unwrap();
    let second = refresh(&p, &rt).await;

    assert!(first.get("refresh_token").is_none());
    assert!(first["access_token"].is_string());
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(p.latest_grant().unwrap().refresh_token, Some(rt));
}

#[tokio::test]
async fn no_refresh_token_at_all() {
    let p = start().await;
    p.update_quirks(|q| q.no_refresh_token = true);

    let body = connect(&p).await;

    assert!(body.get("refresh_token").is_none());
    assert_eq!(p.latest_grant().unwrap().refresh_tokens.len(), 0);
}

#[tokio::test]
async fn rotation_off_returns_the_same_refresh_token() {
    let p = start().await;
    p.set_refresh_rotation(false);
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]);

    let first: serde_json::Value = refresh(&p, rt).await.json().await.unwrap();
    let second = refresh(&p, rt).await;

    assert_eq!(first["refresh_token"], rt);
    assert_eq!(second.status(), StatusCode::OK);
}

#[tokio::test]
async fn iss_can_be_omitted_or_wrong_in_the_redirect() {
    let p = start().await;

    p.update_quirks(|q| q.redirect_iss = RedirectIss::Omitted);
    let (_, omitted) = authorize_raw(&p, &[]).await;
    p.update_quirks(|q| q.redirect_iss = RedirectIss::Wrong("https://attacker.example".into()));
    let (_, wrong) = authorize_raw(&p, &[]).await;
    p.update_quirks(|q| q.hide_iss_support = true);
    let doc: serde_json::Value = http()
        .get(p.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let omitted = query(&omitted.unwrap());
    assert!(omitted.contains_key("code"));
    assert!(!omitted.contains_key("iss"));
    assert_eq!(query(&wrong.unwrap())["iss"], "https://attacker.example");
    assert_eq!(doc["authorization_response_iss_parameter_supported"], false);
}

#[tokio::test]
async fn errors_with_http_200_like_github() {
    let p = start().await;
    p.update_quirks(|q| q.errors_with_200 = true);

    let response = refresh(&p, "fake_rt_unknown").await;

    assert_eq!(
        json_error(response).await,
        (StatusCode::OK, "invalid_grant".to_owned())
    );
}

#[tokio::test]
async fn a_secret_marker_is_written_into_every_code_and_token() {
    let p = start_with(FakeProviderConfig {
        secret_marker: "CANARY".to_owned(),
        ..FakeProviderConfig::default()
    })
    .await;

    let code = authorize(&p).await;
    let tokens: serde_json::Value = exchange(&p, &code).await.json().await.unwrap();
    let refreshed: serde_json::Value = refresh(&p, s(&tokens["refresh_token"]))
        .await
        .json()
        .await
        .unwrap();

    assert!(code.starts_with("fake_code_CANARY_"), "{code}");
    for token in [&tokens, &refreshed] {
        assert!(s(&token["access_token"]).starts_with("fake_at_CANARY_"));
        assert!(s(&token["refresh_token"]).starts_with("fake_rt_CANARY_"));
    }
    assert_ne!(tokens["refresh_token"], refreshed["refresh_token"]);
}

#[tokio::test]
async fn echoing_errors_quote_the_refused_refresh_token_and_client_secret() {
    let p = start().await;
    let tokens = connect(&p).await;
    let refresh_token = s(&tokens["refresh_token"]).to_owned();
    let rotated = refresh(&p, &refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let quoted = format!(
        "refresh_token={refresh_token}, client_secret={}",
        p.client_secret().unwrap()
    );

    p.update_quirks(|q| q.echo_secrets = EchoSecrets::InDescription);
    let described = refresh(&p, &refresh_token).await;
    p.update_quirks(|q| q.echo_secrets = EchoSecrets::AsErrorCode);
    let coded = refresh(&p, &refresh_token).await;

    assert_eq!(described.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = described.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        format!("refresh token already used; the grant is revoked (request: {quoted})")
    );
    assert_eq!(coded.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = coded.json().await.unwrap();
    assert_eq!(body["error"], quoted);
}
