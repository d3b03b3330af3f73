//! PKCE (RFC 7636) and its downgrade protection (RFC 9700 §2.1.1).

use reqwest::StatusCode;
use tokenwarden_fake_provider::FakeProviderConfig;

use crate::support::*;

async fn exchange_with(
    p: &tokenwarden_fake_provider::FakeProvider,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, String) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let response = token(p, &form).await;
    if response.status() == StatusCode::OK {
        return (StatusCode::OK, String::new());
    }
    json_error(response).await
}

#[tokio::test]
async fn a_wrong_verifier_fails_with_invalid_grant_and_spends_the_code() {
    let p = start().await;
    let code = authorize(&p).await;
    let wrong = "x".repeat(43);

    let first = exchange_with(&p, &code, Some(&wrong)).await;
    let retry = exchange_with(&p, &code, Some(VERIFIER)).await;

    assert_eq!(first, (StatusCode::BAD_REQUEST, "invalid_grant".to_owned()));
    assert_eq!(retry.1, "invalid_grant");
    assert!(p.grants().is_empty());
}

#[tokio::test]
async fn a_missing_verifier_fails_when_a_challenge_was_sent() {
    let p = start().await;
    let code = authorize(&p).await;

    assert_eq!(exchange_with(&p, &code, None).await.1, "invalid_grant");
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_refused_as_a_downgrade() {
    let p = start().await;
    let (_, location) = authorize_raw(&p, &[]).await;
    let code = query(&location.unwrap())["code"].clone();

    assert_eq!(
        exchange_with(&p, &code, Some(VERIFIER)).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_fresh_verifier_and_its_s256_challenge_succeed() {
    let p = start().await;
    let verifier = "a-fresh-verifier-of-sufficient-length-0123456789~._";
    let (_, location) = authorize_raw(
        &p,
        &[
            ("code_challenge", &s256(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = query(&location.unwrap())["code"].clone();

    assert_eq!(
        exchange_with(&p, &code, Some(verifier)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn plain_challenges_and_missing_pkce_are_refused_at_authorize() {
    let config = FakeProviderConfig {
        require_pkce: true,
        ..FakeProviderConfig::default()
    };
    let p = start_with(config).await;

    let (_, plain) = authorize_raw(
        &p,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    let (_, none) = authorize_raw(&p, &[]).await;

    assert_eq!(query(&plain.unwrap())["error"], "invalid_request");
    assert_eq!(query(&none.unwrap())["error"], "invalid_request");
    assert!(p.authorizations().is_empty());
}
