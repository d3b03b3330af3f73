//! A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every
//! delivery as it arrived and answers what the test asks (200, 500, 410, slowly). The
//! deliveries are verified with the published Standard Webhooks implementation (the
//! `standardwebhooks` crate), never with tokenwarden's own code.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request as it reached the receiver.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    pub(crate) fn id(&self) -> String {
        header(&self.headers, "webhook-id")
    }

    pub(crate) fn timestamp(&self) -> i64 {
        header(&self.headers, "webhook-timestamp")
            .parse()
            .expect("webhook-timestamp is Unix seconds")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub(crate) fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// Verified by the published library with `secret` (`whsec_...`): its full
    /// `verify` when the delivery's timestamp is within its tolerance of real time;
    /// when a test moved the server's clock further, its `sign` at the delivery's
    /// timestamp must equal one of the signatures the header carries.
    pub(crate) fn verifies_with(&self, secret: &str) -> bool {
        let hook = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
        if (chrono::Utc::now().timestamp() - self.timestamp()).abs() < 240 {
            return hook.verify(&self.body, &self.headers).is_ok();
        }
        let Ok(expected) = hook.sign(&self.id(), self.timestamp(), &self.body) else {
            return false;
        };
        header(&self.headers, "webhook-signature")
            .split(' ')
            .any(|s| s == expected)
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[derive(Debug)]
struct Inner {
    received: Vec<Received>,
    status: StatusCode,
    delay: Duration,
}

/// The receiver; `url()` is what to register.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, delay) = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received { headers, body });
        (inner.status, inner.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    status
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            received: Vec::new(),
            status: StatusCode::OK,
            delay: Duration::ZERO,
        }));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            inner,
            url: format!("http://{addr}/hook"),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn answer(&self, status: StatusCode) {
        self.inner.lock().unwrap().status = status;
    }

    pub(crate) fn delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub(crate) fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.event_type() == event_type)
            .collect()
    }

    /// Waits (up to `within`) until `n` deliveries of `event_type` arrived.
    pub(crate) async fn wait_for(
        &self,
        event_type: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.of_type(event_type);
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < within,
                "waited {within:?} for {n} {event_type} deliveries; got {:?}",
                self.received()
                    .iter()
                    .map(Received::event_type)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
