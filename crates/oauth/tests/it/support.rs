//! A scriptable HTTP server on 127.0.0.1:0 that plays token endpoint, discovery
//! document and JWKS, records every request it gets, and answers each path from a
//! queue of replies (the last reply of a queue repeats).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokenwarden_oauth::{HttpPolicy, OutboundClient, ProviderDefinition, ProviderSpec};
use url::Url;

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub query: Option<String>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    recorded: Mutex<Vec<Recorded>>,
}

pub struct FakeServer {
    base: Url,
    shared: Arc<Shared>,
}

impl FakeServer {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: Url::parse(&format!("http://{addr}")).unwrap(),
            shared,
        }
    }

    /// `http://127.0.0.1:port` without a trailing slash, as an issuer is written.
    pub fn origin(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    pub fn port(&self) -> u16 {
        self.base.port().unwrap()
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    pub fn reply(&self, path: &str, reply: Reply) -> &Self {
        self.shared
            .replies
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back(reply);
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// A provider at this server, with `edit` applied to the spec.
    pub fn provider(&self, edit: impl FnOnce(&mut ProviderSpec)) -> ProviderDefinition {
        let mut spec =
            ProviderSpec::new("fake", "Fake", self.url("/authorize"), self.url("/token"));
        spec.revocation_url = Some(self.url("/revoke"));
        spec.userinfo_url = Some(self.url("/userinfo"));
        spec.issuer = Some(self.origin());
        spec.jwks_uri = Some(self.url("/jwks"));
        spec.default_scopes = vec!["openid".into()];
        edit(&mut spec);
        ProviderDefinition::from_spec(spec, &loopback_policy()).unwrap()
    }
}

pub fn loopback_policy() -> HttpPolicy {
    HttpPolicy {
        allow_loopback: true,
        timeout: Duration::from_secs(5),
        ..HttpPolicy::default()
    }
}

pub fn loopback_client() -> OutboundClient {
    loopback_policy().build().unwrap()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    shared.recorded.lock().unwrap().push(Recorded {
        method,
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        query: uri.query().map(str::to_owned),
    });
    let reply = {
        let mut replies = shared.replies.lock().unwrap();
        let queue = replies.entry(path).or_default();
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    };
    let Some(reply) = reply else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
