//! Provider faults during refresh: each answers a stable problem and leaves the stored
//! token intact; `invalid_grant` marks the connection `needs_reauth`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokenwarden_fake_provider::{FakeProviderConfig, Fault, FaultKind};
use tokenwarden_testing::SpawnOptions;

use crate::helpers::{Answer, assert_problem};
use crate::oauth_support::{OAuthEnv, SCOPES, oauth_env, oauth_env_with, provider_config, report};

const UNAVAILABLE: &str = "the provider is unavailable; the stored token is unchanged, try again";

struct Stored {
    access_token: String,
    refresh_token: String,
}

async fn connected(env: &OAuthEnv) -> Stored {
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let grant = env.grant();
    Stored {
        access_token: grant.access_token.unwrap(),
        refresh_token: grant.refresh_token.unwrap(),
    }
}

/// After a failed refresh: the stored token still reads, and a refresh (faults
/// cleared) presents the refresh token that was stored before the fault.
async fn assert_intact_then_refreshes(env: &OAuthEnv, stored: &mut Stored) {
    env.provider.clear_faults();
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(token["access_token"], stored.access_token);
    assert_eq!(token["refreshed"], false);
    // Transient: `failing`, with the tokens kept and a retry planned.
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(connection["status"], "failing", "{connection}");
    assert!(connection["next_refresh_at"].is_string(), "{connection}");

    let successes = env.provider.successful_refreshes();
    let token = env
        .token("c1", "?force_refresh=true")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(token["refreshed"], true);
    assert_eq!(env.provider.successful_refreshes(), successes + 1);
    let last = env.provider.requests_to("/token").pop().unwrap();
    assert_eq!(
        last.form_param("refresh_token"),
        Some(stored.refresh_token.as_str())
    );
    assert_eq!(env.provider.reuse_detections(), 0);
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(
        connection["status"], "active",
        "the next success makes it active"
    );
    let grant = env.grant();
    *stored = Stored {
        access_token: grant.access_token.unwrap(),
        refresh_token: grant.refresh_token.unwrap(),
    };
    assert_eq!(token["access_token"], stored.access_token);
}

async fn forced(env: &OAuthEnv) -> Answer {
    env.token("c1", "?force_refresh=true").await
}

#[tokio::test]
async fn server_errors_answer_503_without_a_retry_and_keep_the_token() {
    let env = oauth_env().await;
    let mut stored = connected(&env).await;

    for kind in [FaultKind::ServerError, FaultKind::ServiceUnavailable] {
        env.provider
            .push_fault(Fault::always(kind.clone()).refresh_only());
        let calls = env.provider.refresh_calls();

        let answer = forced(&env).await;

        assert_problem(
            &answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            UNAVAILABLE,
        );
        assert_eq!(answer.header("retry-after"), None, "{kind:?}");
        // The request reached the provider, which may have rotated the refresh token
        // before failing: a retry could only present a used token. One attempt.
        assert_eq!(
            env.provider.refresh_calls(),
            calls + 1,
            "{kind:?}: 1 attempt"
        );
        assert_intact_then_refreshes(&env, &mut stored).await;
    }
}

#[tokio::test]
async fn one_server_error_answers_503_and_the_next_read_refreshes_with_the_same_token() {
    let env = oauth_env().await;
    let mut stored = connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::ServiceUnavailable).refresh_only());

    let answer = forced(&env).await;

    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        UNAVAILABLE,
    );
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_intact_then_refreshes(&env, &mut stored).await;
}

#[tokio::test]
async fn rate_limiting_answers_503_with_the_providers_retry_after() {
    let env = oauth_env().await;
    let mut stored = connected(&env).await;
    // Longer than the retry policy waits: no retry, the caller is told when to return.
    env.provider.push_fault(
        Fault::once(FaultKind::TooManyRequests {
            retry_after_secs: 30,
        })
        .refresh_only(),
    );

    let answer = forced(&env).await;

    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        UNAVAILABLE,
    );
    assert_eq!(answer.header("retry-after"), Some("30"));
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_intact_then_refreshes(&env, &mut stored).await;
}

#[tokio::test]
async fn a_garbage_token_response_answers_502_and_keeps_the_token() {
    let env = oauth_env().await;
    let mut stored = connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::GarbageBody).refresh_only());

    let answer = forced(&env).await;

    assert_problem(
        &answer,
        StatusCode::BAD_GATEWAY,
        "provider_error",
        "the provider refused the request: unexpected response",
    );
    assert!(
        !answer.text.contains("overloaded"),
        "the body is not echoed"
    );
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_intact_then_refreshes(&env, &mut stored).await;
}

/// Slow: one full client timeout (10 s) before the retry succeeds. Hanging past every
/// retry would take 3 × 10 s and is not run.
#[tokio::test]
async fn a_provider_that_hangs_past_the_timeout_answers_503_without_a_retry_and_the_token_kept() {
    let env = oauth_env_with(
        SpawnOptions::default(),
        FakeProviderConfig {
            hang_duration: Duration::from_secs(30),
            ..provider_config()
        },
        &SCOPES,
    )
    .await;
    let mut stored = connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::Hang).refresh_only());
    let started = Instant::now();

    let answer = forced(&env).await;

    let elapsed = started.elapsed();
    report(format_args!(
        "hang: the refresh answered after {elapsed:?} (one 10 s timeout, no retry)"
    ));
    assert!(elapsed >= Duration::from_secs(9), "{elapsed:?}");
    // The request may have been processed before the answer was lost: no retry.
    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
        UNAVAILABLE,
    );
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_intact_then_refreshes(&env, &mut stored).await;
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_needs_reauth_and_later_reads_do_not_call_the_provider()
{
    let env = oauth_env().await;
    connected(&env).await;
    env.provider
        .push_fault(Fault::once(FaultKind::InvalidGrant).refresh_only());

    let answer = forced(&env).await;

    let needs_reauth = |answer: &Answer| {
        assert_problem(
            answer,
            StatusCode::CONFLICT,
            "needs_reauth",
            "the provider refused the refresh token; connect the account again",
        )
    };
    needs_reauth(&answer);
    assert_eq!(env.provider.refresh_calls(), 1);
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(connection["status"], "needs_reauth");

    needs_reauth(&env.token("c1", "").await);
    needs_reauth(&forced(&env).await);
    needs_reauth(
        &crate::oauth_support::send(
            &env.app,
            reqwest::Method::POST,
            "/v1/connections/c1/refresh",
            crate::helpers::Auth::Bearer(&env.connect_key),
            None,
        )
        .await,
    );
    assert_eq!(env.provider.refresh_calls(), 1);

    // Connecting again repairs it.
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(connection["status"], "active");
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(token["access_token"], env.grant().access_token.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_queued_behind_a_failing_refresh_share_its_answer() {
    let env = std::sync::Arc::new(oauth_env().await);
    env.connect_expiring("c1").await;
    env.provider
        .push_fault(Fault::always(FaultKind::ServiceUnavailable).refresh_only());
    let calls = env.provider.refresh_calls();

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { env.token("c1", "").await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    for answer in &answers {
        assert_problem(
            answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            UNAVAILABLE,
        );
    }
    let made = env.provider.refresh_calls() - calls;
    report(format_args!(
        "10 callers behind a failing provider: {made} refresh calls"
    ));
    // Callers queued behind the failing attempt share its answer (a refresh is not
    // repeated once it may have reached the provider). It fails at once, so a caller
    // that arrives after the queue has emptied may start one more: a few, never ten.
    assert!((1..=3).contains(&made), "{made} refresh calls");
}
