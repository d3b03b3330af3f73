//! Faults at the token endpoint and what the client makes of them: which are retried,
//! which are classified as the grant or the provider refusing, and which never show
//! the body they came with.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_oauth::{
    AuthorizationCode, HttpPolicy, RefreshToken, TokenError, TransportError, exchange_code, refresh,
};

use crate::support::{FakeServer, Reply, loopback_client};
use crate::token_fixtures::{REDIRECT, credentials, fast_retries, now};

#[tokio::test]
async fn a_server_error_then_success_is_retried_and_succeeds() {
    let server = FakeServer::start().await;
    server
        .reply("/token", Reply::raw(500, "text/html", "<h1>oops</h1>"))
        .reply(
            "/token",
            Reply::json(200, json!({"access_token": "at-3", "token_type": "Bearer"})),
        );
    let def = server.provider(|_| {});
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let tokens = fast_retries()
        .run(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap();

    assert_eq!(tokens.access_token.expose_secret(), "at-3");
    assert_eq!(server.requests_to("/token").len(), 2);
}

#[tokio::test]
async fn invalid_grant_is_reported_as_such_and_never_retried() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::json(400, json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
    );
    let def = server.provider(|_| {});
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let err = fast_retries()
        .run(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap_err();

    let TokenError::InvalidGrant(provider) = err else {
        panic!("expected invalid_grant, got {err:?}")
    };
    assert_eq!(provider.error, "invalid_grant");
    assert_eq!(
        provider.error_description.as_deref(),
        Some("Token has been expired or revoked.")
    );
    assert_eq!(server.requests_to("/token").len(), 1);
}

#[tokio::test]
async fn persistent_server_errors_stop_after_the_configured_attempts() {
    let server = FakeServer::start().await;
    server.reply("/token", Reply::raw(503, "text/plain", "down"));
    let def = server.provider(|_| {});
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let err = fast_retries()
        .run(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        TokenError::Transient {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..
        }
    ));
    assert_eq!(server.requests_to("/token").len(), 3);
}

#[tokio::test]
async fn rate_limit_keeps_retry_after_and_a_long_one_ends_the_retries() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::raw(429, "text/plain", "slow down").header("retry-after", "30"),
    );
    let def = server.provider(|_| {});
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let err = fast_retries()
        .run(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap_err();

    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        server.requests_to("/token").len(),
        1,
        "30 s exceeds the 1 s cap"
    );
}

#[tokio::test]
async fn a_garbage_body_is_malformed_and_the_error_never_shows_it() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::raw(200, "text/html", "<html>access_token=leaked-secret</html>"),
    );
    let def = server.provider(|_| {});
    let http = loopback_client();
    let (creds, code) = (credentials(), AuthorizationCode::new("c"));

    let err = fast_retries()
        .run(|| exchange_code(&http, &def, &creds, &code, REDIRECT, None, now()))
        .await
        .unwrap_err();

    assert!(matches!(
        &err,
        TokenError::Malformed { status: StatusCode::OK, content_type: Some(ct) } if ct == "text/html"
    ));
    assert!(!err.to_string().contains("leaked"));
    assert!(!format!("{err:?}").contains("leaked"));
    assert_eq!(
        server.requests_to("/token").len(),
        1,
        "malformed is not retried"
    );
}

#[tokio::test]
async fn an_error_in_an_http_200_body_is_a_provider_error() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::json(200, json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.", "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"})),
    );
    let def = server.provider(|_| {});

    let err = exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("c"),
        REDIRECT,
        None,
        now(),
    )
    .await
    .unwrap_err();

    let TokenError::Provider(provider) = &err else {
        panic!("expected a provider error, got {err:?}")
    };
    assert_eq!(provider.error, "bad_verification_code");
    assert!(
        provider
            .error_uri
            .as_deref()
            .unwrap()
            .ends_with("#bad-verification-code")
    );
    assert_eq!(
        err.to_string(),
        "the provider refused the request: `bad_verification_code`"
    );
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::raw(307, "text/plain", "").header("location", "/elsewhere"),
    );
    server.reply("/elsewhere", Reply::json(200, json!({"access_token": "x"})));
    let def = server.provider(|_| {});

    let err = exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("c"),
        REDIRECT,
        None,
        now(),
    )
    .await
    .unwrap_err();

    assert!(matches!(
        err,
        TokenError::Malformed {
            status: StatusCode::TEMPORARY_REDIRECT,
            ..
        }
    ));
    assert!(server.requests_to("/elsewhere").is_empty());
}

#[tokio::test]
async fn a_slow_provider_times_out_as_a_transient_error() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::json(200, json!({"access_token": "late"})).delayed(Duration::from_secs(2)),
    );
    let def = server.provider(|_| {});
    let http = HttpPolicy {
        allow_loopback: true,
        timeout: Duration::from_millis(200),
        ..HttpPolicy::default()
    }
    .build()
    .unwrap();

    let err = exchange_code(
        &http,
        &def,
        &credentials(),
        &AuthorizationCode::new("c"),
        REDIRECT,
        None,
        now(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(
            err,
            TokenError::Transient {
                status: None,
                source: Some(TransportError::Timeout(_)),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refresh_answered_503_is_not_retried_so_a_rotated_token_is_never_presented_twice() {
    let server = FakeServer::start().await;
    server
        .reply("/token", Reply::raw(503, "text/plain", "down"))
        .reply(
            "/token",
            Reply::json(200, json!({"access_token": "at-2", "token_type": "Bearer"})),
        );
    let def = server.provider(|_| {});
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let failure = fast_retries()
        .run_refresh(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap_err();

    assert!(
        matches!(
            failure.error,
            TokenError::Transient {
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                ..
            }
        ),
        "{failure:?}"
    );
    assert!(!failure.after_transient);
    assert_eq!(server.requests_to("/token").len(), 1);
}

#[tokio::test]
async fn a_refresh_that_times_out_after_sending_is_not_retried() {
    let server = FakeServer::start().await;
    server
        .reply(
            "/token",
            Reply::json(200, json!({"access_token": "late"})).delayed(Duration::from_secs(2)),
        )
        .reply(
            "/token",
            Reply::json(200, json!({"access_token": "at-2", "token_type": "Bearer"})),
        );
    let def = server.provider(|_| {});
    let http = HttpPolicy {
        allow_loopback: true,
        timeout: Duration::from_millis(200),
        ..HttpPolicy::default()
    }
    .build()
    .unwrap();
    let rt = RefreshToken::new("rt");
    let creds = credentials();

    let failure = fast_retries()
        .run_refresh(|| refresh(&http, &def, &creds, &rt, &[], now()))
        .await
        .unwrap_err();

    assert!(
        matches!(
            failure.error,
            TokenError::Transient {
                status: None,
                source: Some(TransportError::Timeout(_)),
                ..
            }
        ),
        "{failure:?}"
    );
    assert!(!failure.error.never_sent());
    assert_eq!(server.requests_to("/token").len(), 1);
}

#[tokio::test]
async fn a_refresh_whose_connection_is_refused_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let server = FakeServer::start().await;
    let def = server.provider(|spec| {
        spec.token_url = url::Url::parse(&format!("http://127.0.0.1:{port}/token")).unwrap();
    });
    let http = loopback_client();
    let rt = RefreshToken::new("rt");
    let creds = credentials();
    let attempts = std::sync::atomic::AtomicU32::new(0);

    let failure = fast_retries()
        .run_refresh(|| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            refresh(&http, &def, &creds, &rt, &[], now())
        })
        .await
        .unwrap_err();

    assert!(failure.error.never_sent(), "{failure:?}");
    assert!(failure.after_transient);
    assert_eq!(attempts.load(std::sync::atomic::Ordering::Relaxed), 3);
}
