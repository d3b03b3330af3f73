//! Webhook endpoints and deliveries, against a receiver that verifies with the published
//! Standard Webhooks library: the secret shown once, filters, the test event, retries
//! with the same `webhook-id`, rotation signing with both secrets, 410 disabling the
//! endpoint, the delivery log, the outbound policy, and bad input.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_testing::{SpawnOptions, spawn_app_with};

use crate::helpers::Auth;
use crate::lifecycle_support::{Env, env, expect_problem, fast_lifecycle};
use crate::oauth_support::send;
use crate::webhook_receiver::Receiver;

const WAIT: Duration = Duration::from_secs(15);

async fn call(
    env: &Env,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> crate::helpers::Answer {
    send(&env.app, method, path, Auth::Bearer(&env.admin_key), body).await
}

#[tokio::test]
async fn an_endpoint_is_listed_changed_and_deleted_and_its_secret_shown_once() {
    let env = env(false).await;
    assert!(env.webhook_secret.starts_with("whsec_"));
    let list = call(&env, Method::GET, "/v1/webhooks", None)
        .await
        .expect_json(StatusCode::OK);
    let listed = &list.as_array().unwrap()[0];
    assert_eq!(listed["id"], env.webhook_id.as_str());
    assert_eq!(listed["url"], env.receiver.url());
    assert_eq!(listed["enabled"], true);
    assert!(listed["events"].is_null(), "every type: {listed}");
    assert!(
        !list.to_string().contains(&env.webhook_secret),
        "the secret is shown once"
    );
    let secret_b64 = env.webhook_secret.trim_start_matches("whsec_");
    assert!(!list.to_string().contains(secret_b64));

    let path = format!("/v1/webhooks/{}", env.webhook_id);
    let changed = call(
        &env,
        Method::PATCH,
        &path,
        Some(
            &json!({"events": ["connection.needs_reauth", "connection.created"], "enabled": false}),
        ),
    )
    .await
    .expect_json(StatusCode::OK);
    assert_eq!(changed["enabled"], false);
    let mut events: Vec<&str> = changed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    events.sort_unstable();
    assert_eq!(events, ["connection.created", "connection.needs_reauth"]);
    let back = call(
        &env,
        Method::PATCH,
        &path,
        Some(&json!({"events": null, "enabled": true})),
    )
    .await
    .expect_json(StatusCode::OK);
    assert!(back["events"].is_null());

    assert_eq!(
        call(&env, Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    expect_problem(
        &call(&env, Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let list = call(&env, Method::GET, "/v1/webhooks", None)
        .await
        .expect_json(StatusCode::OK);
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_problem() {
    let env = env(false).await;
    for body in [
        json!({"url": "not a url"}),
        json!({"url": "ftp://example.com/hook"}),
        json!({"url": "https://user:pw@example.com/hook"}),
        json!({"url": "https://example.com/hook", "events": []}),
        json!({"url": "https://example.com/hook", "events": ["connection.exploded"]}),
        json!({"url": "https://example.com/hook", "description": "x".repeat(501)}),
        json!({"url": "https://example.com/hook", "colour": "red"}),
        json!({"events": ["connection.created"]}),
    ] {
        let answer = call(&env, Method::POST, "/v1/webhooks", Some(&body)).await;
        expect_problem(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
    expect_problem(
        &call(&env, Method::GET, "/v1/webhooks/wh_nope/deliveries", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let path = format!("/v1/webhooks/{}/deliveries?limit=0", env.webhook_id);
    expect_problem(
        &call(&env, Method::GET, &path, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Only admin keys manage webhooks.
    let answer = send(
        &env.app,
        Method::GET,
        "/v1/webhooks",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await;
    expect_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    // Nothing half-written: still the one endpoint.
    let list = call(&env, Method::GET, "/v1/webhooks", None)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_outbound_policy_refuses_private_addresses_in_production() {
    let app = spawn_app_with(SpawnOptions {
        strict_outbound: true,
        lifecycle: Some(fast_lifecycle()),
        ..SpawnOptions::default()
    })
    .await;
    let vault = app.vault("strict@example.com").await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let answer = send(
            &app,
            Method::POST,
            "/v1/webhooks",
            Auth::Bearer(&vault.admin_key),
            Some(&json!({"url": url})),
        )
        .await;
        expect_problem(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn the_test_event_is_signed_and_a_failing_receiver_gets_retries_with_the_same_id() {
    let env = env(false).await;
    env.receiver.answer(StatusCode::INTERNAL_SERVER_ERROR);
    let queued = call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/test", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    let event_id = queued["event_id"].as_str().unwrap().to_owned();
    let first = env.receiver.wait_for("webhook.test", 1, WAIT).await;
    assert_eq!(first[0].id(), event_id);
    assert!(first[0].verifies_with(&env.webhook_secret));
    // The next attempt is due 5 s later (on the server's clock).
    env.receiver.answer(StatusCode::OK);
    env.app.clock.advance_secs(6);
    let both = env.receiver.wait_for("webhook.test", 2, WAIT).await;
    assert_eq!(
        both[1].id(),
        event_id,
        "a retry carries the same webhook-id"
    );
    assert!(both[1].verifies_with(&env.webhook_secret));
    // Delivered: no third attempt however long we wait.
    env.app.clock.advance_secs(3600);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.receiver.of_type("webhook.test").len(), 2);

    let log = call(
        &env,
        Method::GET,
        &format!("/v1/webhooks/{}/deliveries", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["attempt"], 2, "newest first");
    assert_eq!(log[0]["status_code"], 200);
    assert!(log[0].get("next_attempt_at").is_none());
    assert_eq!(log[1]["attempt"], 1);
    assert_eq!(log[1]["status_code"], 500);
    assert!(log[1]["next_attempt_at"].is_string());
    assert_eq!(log[1]["event_id"], event_id.as_str());
    assert_eq!(log[1]["type"], "webhook.test");
}

#[tokio::test]
async fn a_rotated_secret_and_the_old_one_both_sign_for_a_day() {
    let env = env(false).await;
    let rotated = call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/rotate-secret", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, env.webhook_secret);
    call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/test", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    let got = env.receiver.wait_for("webhook.test", 1, WAIT).await;
    assert!(got[0].verifies_with(&new_secret), "the new secret verifies");
    assert!(
        got[0].verifies_with(&env.webhook_secret),
        "the old secret still verifies"
    );
    // A day later only the new one signs.
    env.app.clock.advance_secs(24 * 3600 + 60);
    call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/test", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    let got = env.receiver.wait_for("webhook.test", 2, WAIT).await;
    assert!(got[1].verifies_with(&new_secret));
    assert!(
        !got[1].verifies_with(&env.webhook_secret),
        "the old secret stopped signing"
    );
}

#[tokio::test]
async fn a_receiver_answering_410_disables_its_endpoint() {
    let env = env(false).await;
    env.receiver.answer(StatusCode::GONE);
    call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/test", env.webhook_id),
        None,
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    env.receiver.wait_for("webhook.test", 1, WAIT).await;
    let started = std::time::Instant::now();
    let hook = loop {
        let list = call(&env, Method::GET, "/v1/webhooks", None)
            .await
            .expect_json(StatusCode::OK);
        let hook = list[0].clone();
        if hook["enabled"] == false || started.elapsed() > WAIT {
            break hook;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(hook["enabled"], false, "{hook}");
    assert!(hook["disabled_reason"].as_str().unwrap().contains("410"));
    // Events for a disabled endpoint are not sent, and a test asks to enable it first.
    env.connect("after-gone").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.receiver.of_type("connection.created").is_empty());
    let answer = call(
        &env,
        Method::POST,
        &format!("/v1/webhooks/{}/test", env.webhook_id),
        None,
    )
    .await;
    expect_problem(&answer, StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn a_filtered_endpoint_gets_only_its_types_and_a_slow_receiver_delays_nothing() {
    let env = env(false).await;
    let slow = Receiver::start().await;
    slow.delay(Duration::from_secs(3));
    call(
        &env,
        Method::POST,
        "/v1/webhooks",
        Some(&json!({"url": slow.url(), "events": ["api_key.created"]})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let started = std::time::Instant::now();
    env.connect("filtered").await;
    let created = send(
        &env.app,
        Method::POST,
        "/v1/api-keys",
        Auth::Bearer(&env.admin_key),
        Some(&json!({"name": "ci", "roles": ["read"]})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a request waited for a delivery"
    );
    let got = slow.wait_for("api_key.created", 1, WAIT).await;
    assert_eq!(got[0].json()["data"]["api_key_id"], created["id"]);
    assert!(!String::from_utf8_lossy(&got[0].body).contains(created["key"].as_str().unwrap()));
    assert!(
        slow.of_type("connection.created").is_empty(),
        "filtered out"
    );
    // The unfiltered endpoint got both.
    env.receiver.wait_for("connection.created", 1, WAIT).await;
    env.receiver.wait_for("api_key.created", 1, WAIT).await;
}
