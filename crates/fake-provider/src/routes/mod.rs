//! The provider's HTTP routes and the middleware that records every request.

mod authorize;
mod client_auth;
mod discovery;
mod form;
mod oauth_error;
mod persona;
mod resource;
mod revoke;
mod token;
mod token_render;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::records::RecordedRequest;
use crate::state::Shared;

/// Largest body the provider reads (proxy tests send up to a few MiB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// All routes, relative to the provider's base URL.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/authorize/decision", post(authorize::decision))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route(
            "/userinfo",
            get(resource::userinfo).post(resource::userinfo),
        )
        .route("/api/{*path}", any(resource::api))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::discovery),
        )
        .route("/jwks", get(discovery::jwks))
        .fallback(persona::dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// Appends the request to the log, then passes it on with its body intact.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let pairs =
        |s: &[u8]| -> Vec<(String, String)> { serde_urlencoded::from_bytes(s).unwrap_or_default() };
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let entry = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .map(|q| pairs(q.as_bytes()))
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        form: if is_form { pairs(&bytes) } else { Vec::new() },
        json: serde_json::from_slice(&bytes).ok(),
        body_len: bytes.len(),
        received_at: shared.now(),
    };
    shared.log_request(entry);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
