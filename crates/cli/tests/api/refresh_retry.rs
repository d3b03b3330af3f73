//! A provider that rotates refresh tokens processes a refresh, and its answer is lost
//! (a 503 from a gateway in front of it, or a hang past the client timeout). Retrying
//! would present the used-up refresh token and earn `invalid_grant`: the refresh is not
//! retried, the caller gets 503 `provider_unavailable`, and the connection is not
//! marked `needs_reauth`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokenwarden_fake_provider::{FakeProviderConfig, Fault, FaultKind};
use tokenwarden_testing::SpawnOptions;

use crate::helpers::assert_problem;
use crate::oauth_support::{OAuthEnv, SCOPES, oauth_env, oauth_env_with, provider_config, report};

const UNAVAILABLE: &str = "the provider is unavailable; the stored token is unchanged, try again";

async fn connected(env: &OAuthEnv) -> String {
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    env.grant().refresh_token.unwrap()
}

/// The refresh was tried once, the provider rotated, nobody presented the old token
/// again, and the connection is still active.
async fn assert_not_retried_and_still_active(env: &OAuthEnv, refresh_token: &str) {
    assert_eq!(env.provider.refresh_calls(), 1, "no retry");
    assert_eq!(
        env.provider.successful_refreshes(),
        1,
        "the provider rotated"
    );
    assert_eq!(env.provider.reuse_detections(), 0);
    let presented: Vec<_> = env
        .provider
        .requests_to("/token")
        .iter()
        .filter_map(|r| r.form_param("refresh_token").map(str::to_owned))
        .collect();
    assert_eq!(presented, vec![refresh_token.to_owned()]);
    // Transient, never `needs_reauth`: `failing`, with the tokens kept.
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(connection["status"], "failing", "{connection}");
}

#[tokio::test]
async fn a_processed_refresh_answered_503_is_not_retried_and_the_connection_stays_active() {
    let env = oauth_env().await;
    let refresh_token = connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::ServiceUnavailableAfterProcessing).refresh_only());

    let answer = env.token("c1", "?force_refresh=true").await;

    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        UNAVAILABLE,
    );
    assert_not_retried_and_still_active(&env, &refresh_token).await;
}

/// Slow: one full client timeout (10 s).
#[tokio::test]
async fn a_processed_refresh_whose_answer_hangs_past_the_timeout_is_not_retried() {
    let env = oauth_env_with(
        SpawnOptions::default(),
        FakeProviderConfig {
            hang_duration: Duration::from_secs(30),
            ..provider_config()
        },
        &SCOPES,
    )
    .await;
    let refresh_token = connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::HangAfterProcessing).refresh_only());
    let started = Instant::now();

    let answer = env.token("c1", "?force_refresh=true").await;

    let elapsed = started.elapsed();
    report(format_args!(
        "lost answer: the refresh answered after {elapsed:?} (one timeout, no retry)"
    ));
    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        UNAVAILABLE,
    );
    assert!(elapsed < Duration::from_secs(19), "{elapsed:?}");
    assert_not_retried_and_still_active(&env, &refresh_token).await;
}
