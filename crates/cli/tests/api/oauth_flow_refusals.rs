//! Every way a connect-flow callback is refused: replayed, expired, forged or repeated
//! state or code, another app's callback path, another or a missing issuer, and
//! denied consent.

use reqwest::StatusCode;
use tokenwarden_fake_provider::{AuthorizeMode, Quirks, RedirectIss};

use crate::helpers::assert_problem;
use crate::oauth_flow_support::{get_page, new_session};
use crate::oauth_support::{OAuthEnv, SCOPES, authorize, oauth_env, query_param, with_param};

const REFUSED: &str = "Sign-in link not valid";

#[tokio::test]
async fn a_replayed_callback_is_refused_and_the_code_is_exchanged_once() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let first = get_page(&env, &callback).await;
    assert_eq!(first.status, StatusCode::OK);
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);

    let replay = get_page(&env, &callback).await;

    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    assert!(replay.text.contains(REFUSED), "{}", replay.text);
    assert_eq!(replay.header("cache-control"), Some("no-store"));
    assert!(
        !replay
            .text
            .contains(&query_param(&callback, "code").unwrap())
    );
    assert_eq!(env.provider.code_exchanges(), 1);
    assert_eq!(env.provider.reuse_detections(), 0);
    let again = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(again["access_token"], token["access_token"]);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
}

#[tokio::test]
async fn an_expired_state_is_refused_without_exchanging_the_code() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    env.app.clock.advance_secs(601);

    let page = get_page(&env, &callback).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains("has expired"), "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_problem(
        &env.connection("c1").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    // Its connect link, never opened, can still start the flow afresh...
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    // ...until the link's own time is up.
    env.app.clock.advance_secs(1800);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "expired");
}

#[tokio::test]
async fn a_forged_state_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let forged = with_param(
        &callback,
        "state",
        "Xq3mD0fP8wz1Lr6TbV2yKc9NsHe4Ga7Ju5Ro0Wi1Yt",
    );

    let page = get_page(&env, &forged).await;
    let no_state = get_page(
        &env,
        &format!(
            "{}?code={}",
            env.oauth_app["redirect_uri"].as_str().unwrap(),
            query_param(&callback, "code").unwrap()
        ),
    )
    .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains(REFUSED));
    assert_eq!(
        no_state.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_state.text
    );
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    // The genuine response still works.
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

#[tokio::test]
async fn a_callback_that_repeats_its_state_or_code_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let state = query_param(&callback, "state").unwrap();

    let mut pages = Vec::new();
    for (name, value) in [
        ("state", "Xq3mD0fP8wz1Lr6TbV2yKc9NsHe4Ga7Ju5Ro0Wi1Yt"),
        ("state", state.as_str()),
        ("code", "another-code"),
    ] {
        let page = get_page(&env, &format!("{callback}&{name}={value}")).await;
        pages.push((name, page));
    }

    // RFC 6749 §3.1: a parameter "MUST NOT be included more than once"; which of two
    // states would be checked and which consumed is exactly the ambiguity to refuse.
    for (name, page) in &pages {
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
        assert!(page.text.contains(REFUSED), "{}", page.text);
        assert!(
            page.text
                .contains(&format!("the response repeats the `{name}` parameter")),
            "{}",
            page.text
        );
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
    assert_eq!(env.provider.code_exchanges(), 0);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

#[tokio::test]
async fn a_response_delivered_on_another_apps_callback_path_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let other =
        crate::oauth_support::create_app(&env.app, &env.vault.admin_key, "other", &SCOPES).await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let foreign = callback.replace(
        env.oauth_app["redirect_uri"].as_str().unwrap(),
        other["redirect_uri"].as_str().unwrap(),
    );
    assert_ne!(foreign, callback);

    let page = get_page(&env, &foreign).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains(REFUSED));
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

/// Runs a flow whose callback must fail with `error`; asserts nothing was stored.
async fn assert_flow_fails(env: &OAuthEnv, error: &str) {
    let session = new_session(env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;

    let page = get_page(env, &callback).await;

    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text);
    assert!(page.text.contains("Connection failed"), "{}", page.text);
    assert!(
        page.text.contains(&format!("<code>{error}</code>")),
        "{}",
        page.text
    );
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"], error);
    // A failed session cannot be retried with the same response.
    let again = get_page(env, &callback).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_response_with_another_issuer_is_refused_before_the_code_is_exchanged() {
    let env = oauth_env().await;
    env.provider.set_quirks(Quirks {
        redirect_iss: RedirectIss::Wrong("https://attacker.example".into()),
        ..Quirks::default()
    });

    assert_flow_fails(&env, "iss_mismatch").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}

#[tokio::test]
async fn a_response_without_iss_is_refused_when_the_provider_says_it_sends_iss() {
    let env = oauth_env().await;
    env.provider.set_quirks(Quirks {
        redirect_iss: RedirectIss::Omitted,
        ..Quirks::default()
    });

    assert_flow_fails(&env, "iss_mismatch").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}

#[tokio::test]
async fn a_denied_consent_fails_the_session_without_exchanging_anything() {
    let env = oauth_env().await;
    env.provider.set_authorize_mode(AuthorizeMode::Deny);

    assert_flow_fails(&env, "access_denied").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}
