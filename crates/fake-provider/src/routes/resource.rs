//! Endpoints that take an access token: `/userinfo` (OIDC Core §5.3) and the
//! echoing `/api/{*path}` for proxy tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use crate::state::{Shared, TokenOwner, lock};

/// Why a request's bearer token was refused (RFC 6750 §3).
#[derive(Debug)]
enum Unauthorized {
    /// No bearer token: a bare challenge, no error code (§3.1).
    Missing,
    /// Unknown, expired or revoked.
    Invalid,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let (challenge, body) = match self {
            Self::Missing => (
                "Bearer realm=\"fake-provider\"",
                json!({ "message": "missing bearer token" }),
            ),
            Self::Invalid => (
                "Bearer realm=\"fake-provider\", error=\"invalid_token\"",
                json!({ "error": "invalid_token", "message": "invalid, expired or revoked access token" }),
            ),
        };
        let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

/// The grant of the request's bearer token.
fn bearer(shared: &Shared, headers: &HeaderMap) -> Result<TokenOwner, Unauthorized> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Unauthorized::Missing)?;
    lock(&shared.store)
        .validate_access(token, Utc::now())
        .ok_or(Unauthorized::Invalid)
}

pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.count(|c| c.userinfo_calls += 1);
    if let Err(refused) = bearer(&shared, &headers) {
        return refused.into_response();
    }
    Json(json!({
        "sub": shared.user.subject,
        "email": shared.user.email,
        "email_verified": true,
        "name": shared.user.name,
    }))
    .into_response()
}

/// Echoes what arrived, so proxy tests can assert on it.
pub(crate) async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.count(|c| c.api_calls += 1);
    let owner = match bearer(&shared, &headers) {
        Ok(owner) => owner,
        Err(refused) => return refused.into_response(),
    };
    let mut echoed: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        echoed
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let query_params: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "query_params": query_params,
        "headers": echoed,
        "body_len": body.len(),
        "grant_id": owner.grant.0,
        "client_id": owner.client_id,
        "scope": owner.scope,
        "sub": shared.user.subject,
    }))
    .into_response()
}
