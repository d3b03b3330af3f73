//! The sender against a real HTTP server on 127.0.0.1 (so `allow_loopback = true`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use tokenwarden_oauth::HttpPolicy;
use tokenwarden_webhooks::{OutcomeKind, Sender, WebhookSecret, sign, verify};

#[derive(Debug, Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>,
}

impl Received {
    fn record(&self, path: &str, headers: HeaderMap, body: Bytes) {
        self.requests
            .lock()
            .unwrap()
            .push((path.to_owned(), headers, body));
    }

    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect()
    }
}

/// A receiver with one route per behaviour; returns its base URL and what it saw.
async fn spawn_receiver() -> (String, Received) {
    let received = Received::default();
    let r = received.clone();
    let ok = move |headers: HeaderMap, body: Bytes| async move {
        r.record("/ok", headers, body);
        StatusCode::NO_CONTENT
    };
    let app = Router::new()
        .route("/ok", post(ok))
        .route("/gone", post(|| async { StatusCode::GONE }))
        .route(
            "/fail",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stack trace: secret=hunter2",
                )
            }),
        )
        .route(
            "/redirect",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/big",
            post(|| async { (StatusCode::OK, vec![b'x'; 1024 * 1024]).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

const ID: &str = "msg_01JZ3Q4V5W6X7Y8Z9A0B1C2D3E";
const BODY: &str = r#"{"type":"webhook.test","timestamp":"2026-12-03T14:30:05.000Z","data":{}}"#;

async fn send_to(sender: &Sender, base: &str, path: &str) -> tokenwarden_webhooks::SendOutcome {
    let secret = WebhookSecret::generate();
    let signature = sign(ID, 1_700_000_000, BODY.as_bytes(), &[&secret]);
    sender
        .send(
            &format!("{base}{path}"),
            ID,
            1_700_000_000,
            BODY,
            &signature,
        )
        .await
}

#[tokio::test]
async fn a_delivery_carries_the_standard_webhooks_headers_and_the_exact_body() {
    let (base, received) = spawn_receiver().await;
    let sender = Sender::new(true).unwrap();
    let secret = WebhookSecret::generate();
    let signature = sign(ID, 1_700_000_000, BODY.as_bytes(), &[&secret]);

    let outcome = sender
        .send(&format!("{base}/ok"), ID, 1_700_000_000, BODY, &signature)
        .await;

    assert_eq!(outcome.kind, OutcomeKind::Delivered);
    assert_eq!(outcome.status_code, Some(204));
    assert_eq!(outcome.error, None);
    let requests = received.requests.lock().unwrap();
    let (_, headers, body) = &requests[0];
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("user-agent"), "tokenwarden-webhooks");
    assert_eq!(h("webhook-id"), ID);
    assert_eq!(h("webhook-timestamp"), "1700000000");
    assert_eq!(h("webhook-signature"), signature);
    assert_eq!(body.as_ref(), BODY.as_bytes());
    // What arrived verifies as a receiver would check it.
    assert_eq!(
        verify(
            &h("webhook-id"),
            h("webhook-timestamp").parse().unwrap(),
            body,
            &h("webhook-signature"),
            &secret,
            1_700_000_030,
        ),
        Ok(())
    );
}

#[tokio::test]
async fn gone_means_gone_and_server_errors_mean_retry_without_echoing_the_body() {
    let (base, _) = spawn_receiver().await;
    let sender = Sender::new(true).unwrap();

    let gone = send_to(&sender, &base, "/gone").await;
    assert_eq!(gone.kind, OutcomeKind::Gone);
    assert_eq!(gone.status_code, Some(410));

    let failed = send_to(&sender, &base, "/fail").await;
    assert_eq!(failed.kind, OutcomeKind::Retry);
    assert_eq!(failed.status_code, Some(500));
    assert_eq!(
        failed.error.as_deref(),
        Some("the endpoint answered HTTP 500")
    );
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let (base, received) = spawn_receiver().await;
    let sender = Sender::new(true).unwrap();

    let outcome = send_to(&sender, &base, "/redirect").await;

    assert_eq!(outcome.kind, OutcomeKind::Retry);
    assert_eq!(outcome.status_code, Some(302));
    assert!(
        outcome
            .error
            .unwrap()
            .contains("redirects are not followed")
    );
    assert!(received.paths().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_slow_receiver_times_out_into_a_retry() {
    let (base, _) = spawn_receiver().await;
    let sender = Sender::with_policy(HttpPolicy {
        allow_loopback: true,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        max_body_bytes: 4096,
        resolver: None,
    })
    .unwrap();

    let started = std::time::Instant::now();
    let outcome = send_to(&sender, &base, "/slow").await;

    assert_eq!(outcome.kind, OutcomeKind::Retry);
    assert_eq!(outcome.status_code, None);
    assert_eq!(
        outcome.error.as_deref(),
        Some("the endpoint did not answer in time")
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_large_answer_still_counts_as_delivered() {
    let (base, _) = spawn_receiver().await;
    let sender = Sender::new(true).unwrap();
    let outcome = send_to(&sender, &base, "/big").await;
    assert_eq!(outcome.kind, OutcomeKind::Delivered);
    assert_eq!(outcome.status_code, Some(200));
}

#[tokio::test]
async fn the_strict_sender_refuses_loopback_and_plain_http() {
    let (base, received) = spawn_receiver().await;
    let strict = Sender::new(false).unwrap();

    let plain = send_to(&strict, &base, "/ok").await;
    assert_eq!(plain.kind, OutcomeKind::Retry);
    assert_eq!(plain.status_code, None);
    assert_eq!(
        plain.error.as_deref(),
        Some("the endpoint URL must use https")
    );

    let https_base = base.replace("http://", "https://");
    let loopback = send_to(&strict, &https_base, "/ok").await;
    assert_eq!(loopback.kind, OutcomeKind::Retry);
    assert_eq!(
        loopback.error.as_deref(),
        Some("the endpoint's address is not public")
    );

    let by_name = send_to(&strict, "https://localhost:1", "/ok").await;
    assert_eq!(
        by_name.error.as_deref(),
        Some("the endpoint's address is not public")
    );
    assert!(received.paths().is_empty());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retry() {
    let sender = Sender::new(true).unwrap();
    // Port 1 on loopback: nothing listens there.
    let outcome = send_to(&sender, "http://127.0.0.1:1", "/ok").await;
    assert_eq!(outcome.kind, OutcomeKind::Retry);
    assert_eq!(outcome.status_code, None);
    assert_eq!(
        outcome.error.as_deref(),
        Some("could not connect to the endpoint")
    );
}

#[tokio::test]
async fn an_invalid_url_is_a_retry_that_does_not_quote_it() {
    let sender = Sender::new(true).unwrap();
    let outcome = sender.send("not a url?k=s3cr3t", ID, 0, BODY, "v1,x").await;
    assert_eq!(outcome.kind, OutcomeKind::Retry);
    assert!(!outcome.error.unwrap().contains("s3cr3t"));
}
