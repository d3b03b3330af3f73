//! Background refresh and connection health, end to end: a managed vault's connection
//! that nobody reads is kept alive through a simulated year by the server alone, while
//! the same connection in a zero-knowledge vault dies of idleness; transient provider
//! failures make it `failing` (tokens kept) and recovery makes it `active`; a refused
//! refresh token makes it `needs_reauth`; reconnecting brings it back. Every change of
//! status reaches a receiver that verifies the signatures with the published Standard
//! Webhooks library.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenwarden_fake_provider::{Fault, FaultKind, Quirks};

use crate::helpers::Auth;
use crate::lifecycle_support::{Env, env, expect_problem};
use crate::oauth_support::send;

const DAY: i64 = 24 * 3600;
const WAIT: Duration = Duration::from_secs(15);

fn refreshed_at(c: &Value) -> String {
    c["refreshed_at"].as_str().unwrap_or_default().to_owned()
}

/// Every delivery verifies under the endpoint's secret, and none holds a token.
fn assert_signed_and_clean(env: &Env) {
    let tokens = env.provider.issued_secrets();
    for delivery in env.receiver.received() {
        assert!(
            delivery.verifies_with(&env.webhook_secret),
            "a delivery failed Standard Webhooks verification: {}",
            String::from_utf8_lossy(&delivery.body)
        );
        let body = String::from_utf8_lossy(&delivery.body);
        for secret in &tokens {
            assert!(
                !body.contains(secret.as_str()),
                "a delivery carries a secret"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_nobody_reads_stays_alive_through_a_simulated_year() {
    let env = env(true).await;
    // Refresh tokens that die after 30 idle days and rotate on every use; access tokens
    // of an hour.
    env.provider.set_refresh_rotation(true);
    env.provider
        .set_refresh_token_lifetimes(Some(chrono::Duration::days(30)), None);
    env.connect("nightly-sync").await;
    let created = env.receiver.wait_for("connection.created", 1, WAIT).await;
    assert_eq!(created[0].json()["data"]["connection_id"], "nightly-sync");
    let c = env.connection("nightly-sync").await;
    assert_eq!(c["status"], "active");
    let first_due: chrono::DateTime<chrono::Utc> =
        c["next_refresh_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = c["expires_at"].as_str().unwrap().parse().unwrap();
    // Ahead of expiry by a tenth of the lifetime at least, never after it.
    assert!(first_due <= expires - chrono::Duration::minutes(6), "{c}");

    // A year in steps of ten days: every step outlives the access token, and three
    // idle steps would kill the refresh token. Nobody reads the token meanwhile.
    let mut last = refreshed_at(&c);
    let refreshes_before = env.provider.successful_refreshes();
    for step in 0..37 {
        env.advance(10 * DAY);
        let now = env.now();
        let c = env
            .wait_until("nightly-sync", "a background refresh", |c| {
                refreshed_at(c) != last
                    && c["next_refresh_at"]
                        .as_str()
                        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                        .is_some_and(|t| t > now)
            })
            .await;
        assert_eq!(c["status"], "active", "step {step}: {c}");
        last = refreshed_at(&c);
    }
    let refreshes = env.provider.successful_refreshes() - refreshes_before;
    // One refresh per step: never twice for one due time.
    assert_eq!(refreshes, 37, "background refreshes over the year");
    assert_eq!(env.provider.dead_refresh_token_refusals(), 0);
    // A year later the token read works without a refresh... and the token is live.
    let token = env.token("nightly-sync").await.expect_json(StatusCode::OK);
    assert!(token["access_token"].as_str().is_some());
    // No status changed all year: only the creation event was sent.
    assert_eq!(env.receiver.of_type("connection.refresh_failed").len(), 0);
    assert_signed_and_clean(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_holder_a_zero_knowledge_connection_dies_of_idleness() {
    // The control for the year above: same provider rules, but the server cannot open
    // this vault, so nothing refreshes it while nobody reads.
    let env = env(false).await;
    env.provider
        .set_refresh_token_lifetimes(Some(chrono::Duration::days(30)), None);
    env.connect("forgotten").await;
    let c = env.connection("forgotten").await;
    assert!(
        c["next_refresh_at"].is_string(),
        "a due time is still shown: {c}"
    );
    env.advance(40 * DAY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.provider.refresh_calls(),
        0,
        "the server refreshed a vault it cannot open"
    );
    let answer = env.token("forgotten").await;
    expect_problem(&answer, StatusCode::CONFLICT, "needs_reauth");
    assert_eq!(env.provider.dead_refresh_token_refusals(), 1);
    let c = env.connection("forgotten").await;
    assert_eq!(c["status"], "needs_reauth");
    assert!(c["status_reason"].as_str().is_some_and(|r| !r.is_empty()));
    env.receiver
        .wait_for("connection.needs_reauth", 1, WAIT)
        .await;
    assert_signed_and_clean(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_makes_it_failing_with_the_tokens_kept_and_recovery_makes_it_active() {
    let env = env(true).await;
    env.connect("crm").await;
    let before = env.provider.latest_grant().unwrap();
    // The provider answers 503 to every refresh for hours.
    env.provider
        .push_fault(Fault::always(FaultKind::ServiceUnavailable).refresh_only());
    env.advance(2 * 3600);
    let c = env
        .wait_until("crm", "failing", |c| c["status"] == "failing")
        .await;
    assert!(c["status_reason"].as_str().unwrap().contains("kept"), "{c}");
    let failed = env
        .receiver
        .wait_for("connection.refresh_failed", 1, WAIT)
        .await;
    assert_eq!(failed[0].json()["data"]["status"], "failing");
    // Retried with backoff while failing, never `needs_reauth`, tokens untouched.
    for _ in 0..6 {
        let calls = env.provider.refresh_calls();
        env.advance(3600);
        env.wait_until("crm", "a retry", |_| env.provider.refresh_calls() > calls)
            .await;
        let c = env.connection("crm").await;
        assert_eq!(c["status"], "failing", "{c}");
    }
    assert_eq!(
        env.receiver.of_type("connection.refresh_failed").len(),
        1,
        "one event per change of status, not per failure"
    );
    assert_eq!(env.receiver.of_type("connection.needs_reauth").len(), 0);
    let grant = env.provider.latest_grant().unwrap();
    assert_eq!(
        grant.refresh_token, before.refresh_token,
        "the stored refresh token is kept"
    );

    // The provider comes back: the next retry succeeds.
    env.provider.clear_faults();
    env.advance(3600);
    let c = env
        .wait_until("crm", "active again", |c| c["status"] == "active")
        .await;
    assert!(c.get("status_reason").is_none(), "{c}");
    env.receiver.wait_for("connection.recovered", 1, WAIT).await;
    assert_signed_and_clean(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_needs_reauth_and_reconnecting_restores_it() {
    let env = env(true).await;
    env.connect("mailbox").await;
    env.provider
        .push_fault(Fault::always(FaultKind::InvalidGrant).refresh_only());
    env.advance(2 * 3600);
    let c = env
        .wait_until("mailbox", "needs_reauth", |c| c["status"] == "needs_reauth")
        .await;
    assert!(c.get("next_refresh_at").is_none(), "{c}");
    let events = env
        .receiver
        .wait_for("connection.needs_reauth", 1, WAIT)
        .await;
    assert_eq!(events[0].json()["data"]["connection_id"], "mailbox");
    // Nothing keeps refreshing a connection that needs a person.
    let calls = env.provider.refresh_calls();
    env.advance(DAY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.provider.refresh_calls(), calls);

    // The filter finds it; reconnecting with the same id brings it back.
    let listed = send(
        &env.app,
        Method::GET,
        "/v1/connections?status=needs_reauth",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    env.provider.clear_faults();
    env.connect("mailbox").await;
    let c = env.connection("mailbox").await;
    assert_eq!(c["status"], "active");
    env.receiver
        .wait_for("connection.reconnected", 1, WAIT)
        .await;
    assert_signed_and_clean(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_nothing_can_refresh_sends_expiring_then_expires() {
    let env = env(true).await;
    env.provider.set_quirks(Quirks {
        no_refresh_token: true,
        expires_in_override: Some(3 * DAY),
        ..Quirks::default()
    });
    env.connect("one-shot").await;
    let c = env.connection("one-shot").await;
    assert!(
        c.get("next_refresh_at").is_none(),
        "nothing to refresh: {c}"
    );
    // The default notice is a day ahead.
    env.advance(2 * DAY + 3600);
    let expiring = env.receiver.wait_for("connection.expiring", 1, WAIT).await;
    assert_eq!(expiring[0].json()["data"]["connection_id"], "one-shot");
    env.advance(DAY);
    let c = env
        .wait_until("one-shot", "expired", |c| c["status"] == "expired")
        .await;
    assert!(c["status_reason"].as_str().is_some());
    env.receiver.wait_for("connection.expired", 1, WAIT).await;
    assert_eq!(
        env.receiver.of_type("connection.expiring").len(),
        1,
        "sent once"
    );
    assert_signed_and_clean(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_by_status_app_and_due_time() {
    let env = env(false).await;
    env.connect("a").await;
    env.connect("b").await;
    let list = |query: &'static str| {
        let env = &env;
        async move {
            send(
                &env.app,
                Method::GET,
                &format!("/v1/connections{query}"),
                Auth::Bearer(&env.read_key),
                None,
            )
            .await
        }
    };
    let all = list("?status=active&app=fake")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let none = list("?expiring_within=60")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        none.as_array().unwrap().len(),
        0,
        "an hour's token is not due within a minute"
    );
    let due = list("?expiring_within=3600")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(due.as_array().unwrap().len(), 2);
    for bad in [
        "?status=sleeping",
        "?expiring_within=-1",
        "?expiring_within=soon",
        "?expiring_within=99999999999",
        "?app=Not%20A%20Key",
        "?colour=red",
    ] {
        expect_problem(&list(bad).await, StatusCode::BAD_REQUEST, "invalid_request");
    }
}
