//! Injected faults at the token endpoint.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokenwarden_fake_provider::{FakeProviderConfig, Fault, FaultKind};

use crate::support::*;

#[tokio::test]
async fn the_next_n_calls_fail_then_the_provider_recovers_without_spending_the_token() {
    let p = start().await;
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]).to_owned();
    p.push_fault(Fault::times(FaultKind::ServerError, 2));
    p.push_fault(Fault::once(FaultKind::ServiceUnavailable));

    let statuses = [
        refresh(&p, &rt).await.status(),
        refresh(&p, &rt).await.status(),
        refresh(&p, &rt).await.status(),
        refresh(&p, &rt).await.status(),
    ];

    assert_eq!(
        statuses,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    assert_eq!((p.refresh_calls(), p.successful_refreshes()), (4, 1));
    assert!(p.pending_faults().is_empty());
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let p = start().await;
    p.push_fault(Fault::once(FaultKind::TooManyRequests {
        retry_after_secs: 7,
    }));

    let response = refresh(&p, "fake_rt_x").await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
}

#[tokio::test]
async fn an_injected_invalid_grant_leaves_the_grant_usable() {
    let p = start().await;
    let body = connect(&p).await;
    let rt = s(&body["refresh_token"]);
    p.push_fault(Fault::once(FaultKind::InvalidGrant));

    let (status, error) = json_error(refresh(&p, rt).await).await;

    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(refresh(&p, rt).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_garbage_body_is_html_with_status_200() {
    let p = start().await;
    p.push_fault(Fault::once(FaultKind::GarbageBody));

    let response = refresh(&p, "fake_rt_x").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).is_err());
}

#[tokio::test]
async fn refresh_only_faults_spare_code_exchanges() {
    let p = start().await;
    p.push_fault(Fault::always(FaultKind::ServiceUnavailable).refresh_only());

    let body = connect(&p).await;
    let first = refresh(&p, s(&body["refresh_token"])).await.status();
    let second = refresh(&p, s(&body["refresh_token"])).await.status();
    p.clear_faults();
    let third = refresh(&p, s(&body["refresh_token"])).await.status();

    assert_eq!(first, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third, StatusCode::OK);
}

#[tokio::test]
async fn latency_delays_the_token_endpoint() {
    let p = start().await;
    p.set_token_latency(Duration::from_millis(300));

    let started = Instant::now();
    let _ = refresh(&p, "fake_rt_x").await;

    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout_and_shutdown_releases_it() {
    let config = FakeProviderConfig {
        hang_duration: Duration::from_secs(60),
        ..FakeProviderConfig::default()
    };
    let p = start_with(config).await;
    p.push_fault(Fault::once(FaultKind::Hang));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let result = client
        .post(p.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "fake_rt_x"),
        ])
        .send()
        .await;

    assert!(result.unwrap_err().is_timeout());
    let started = Instant::now();
    p.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}
