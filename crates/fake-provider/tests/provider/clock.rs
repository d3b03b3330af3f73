//! The movable clock and refresh tokens that die of idleness or age under it.

use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use tokenwarden_fake_provider::FakeProvider;

use crate::support::*;

const DAY: i64 = 24 * 3600;

/// Refreshes and returns the new refresh token (the same one without rotation).
async fn refresh_ok(p: &FakeProvider, refresh_token: &str) -> String {
    let response = refresh(p, refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    s(&body["refresh_token"]).to_owned()
}

/// Refreshes and returns the error code and description.
async fn refresh_refused(p: &FakeProvider, refresh_token: &str) -> (StatusCode, String, String) {
    let response = refresh(p, refresh_token).await;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        s(&body["error"]).to_owned(),
        s(&body["error_description"]).to_owned(),
    )
}

fn dead() -> (StatusCode, String, String) {
    (
        StatusCode::BAD_REQUEST,
        "invalid_grant".to_owned(),
        "Token has been expired or revoked.".to_owned(),
    )
}

#[tokio::test]
async fn advancing_the_clock_expires_access_tokens_and_codes() {
    let p = start().await;
    let body = connect(&p).await;
    let access = s(&body["access_token"]).to_owned();
    assert!(p.is_access_token_valid(&access));

    p.advance_secs(3600 + 1);

    let drift = p.now() - Utc::now() - TimeDelta::seconds(3601);
    assert!(drift.num_seconds().abs() <= 2, "{drift}");
    assert!(!p.is_access_token_valid(&access));
    let userinfo = http()
        .get(p.userinfo_endpoint())
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    let logged = p.requests_to("/userinfo").pop().unwrap();
    assert!(logged.received_at > Utc::now() + TimeDelta::seconds(3590));

    // A code issued now is stale after its ten minutes of provider time.
    let code = authorize(&p).await;
    p.advance_secs(601);
    let (status, error) = json_error(exchange(&p, &code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn refresh_tokens_live_forever_by_default() {
    let p = start().await;
    p.set_refresh_rotation(false);
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]).to_owned();

    p.advance_secs(10 * 365 * DAY);

    assert_eq!(refresh_ok(&p, &rt).await, rt);
    assert_eq!(p.dead_refresh_token_refusals(), 0);
}

#[tokio::test]
async fn without_rotation_each_use_restarts_the_idle_time() {
    let p = start().await;
    p.set_refresh_rotation(false);
    p.set_refresh_token_lifetimes(Some(TimeDelta::days(90)), None);
    let rt = s(&connect(&p).await["refresh_token"]).to_owned();

    // 89 + 89 days: more than 90 since issue, never 90 without a use.
    p.advance_secs(89 * DAY);
    assert_eq!(refresh_ok(&p, &rt).await, rt);
    p.advance_secs(89 * DAY);
    assert_eq!(refresh_ok(&p, &rt).await, rt);
    p.advance_secs(91 * DAY);

    assert_eq!(refresh_refused(&p, &rt).await, dead());
    assert_eq!(p.dead_refresh_token_refusals(), 1);
    assert_eq!(p.successful_refreshes(), 2);
    assert_eq!(p.refresh_calls(), 3);
    // Dying of idleness is not reuse: the grant is not revoked.
    assert_eq!(p.reuse_detections(), 0);
    assert!(!p.latest_grant().unwrap().revoked);
}

#[tokio::test]
async fn with_rotation_a_connection_refreshed_in_time_survives_a_year() {
    let p = start().await;
    p.set_refresh_token_lifetimes(Some(TimeDelta::days(90)), Some(TimeDelta::days(120)));
    let mut rt = s(&connect(&p).await["refresh_token"]).to_owned();

    // Every 80 days for a year: each new token has its own issue time.
    for _ in 0..5 {
        p.advance_secs(80 * DAY);
        let next = refresh_ok(&p, &rt).await;
        assert_ne!(next, rt);
        rt = next;
    }
    assert_eq!(p.dead_refresh_token_refusals(), 0);

    p.advance_secs(91 * DAY);
    assert_eq!(refresh_refused(&p, &rt).await, dead());
    assert_eq!(p.dead_refresh_token_refusals(), 1);
}

#[tokio::test]
async fn without_rotation_the_absolute_lifetime_counts_from_issue_whatever_the_uses() {
    let p = start().await;
    p.set_refresh_rotation(false);
    p.set_refresh_token_lifetimes(Some(TimeDelta::days(90)), Some(TimeDelta::days(365)));
    let rt = s(&connect(&p).await["refresh_token"]).to_owned();

    for _ in 0..4 {
        p.advance_secs(80 * DAY);
        assert_eq!(refresh_ok(&p, &rt).await, rt);
    }
    // Day 320 was the last use; day 366 is within the idle window but past a year.
    p.advance_secs(46 * DAY);

    assert_eq!(refresh_refused(&p, &rt).await, dead());
    assert_eq!(p.dead_refresh_token_refusals(), 1);
    assert_eq!(p.successful_refreshes(), 4);
}

#[tokio::test]
async fn lifetimes_apply_to_tokens_issued_before_they_were_set() {
    let p = start().await;
    let rt = s(&connect(&p).await["refresh_token"]).to_owned();
    p.advance_secs(31 * DAY);

    p.set_refresh_token_lifetimes(None, Some(TimeDelta::days(30)));

    assert_eq!(refresh_refused(&p, &rt).await, dead());
    assert_eq!(p.counters().dead_refresh_token_refusals, 1);
}
