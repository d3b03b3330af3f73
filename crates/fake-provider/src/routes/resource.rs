//! Endpoints that take an access token: `/userinfo` (OIDC Core §5.3) and the
//! echoing `/api/{*path}` for proxy tests, with a few special paths:
//! - `/api/echo-body[/...]`: answers the request body itself, with its content type;
//! - `/api/redirect?to=URL`: `302` to `URL`;
//! - `/api/bytes?n=N[&chunked=true]`: `N` bytes of `x`, with a `Content-Length` or
//!   streamed in 64 KiB chunks without one;
//! - `/api/hang`: answers only when the provider's hang duration ends or it shuts down;
//! - anything else: a JSON echo of the method, path, query, headers and body.
//!
//! Every `/api` answer sets a cookie, and `Cache-Control: private, max-age=5` unless
//! the path ends in `/no-cache-header`, so that tests can see what a proxy passes on.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
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
        .validate_access(token, shared.now())
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
    let refuse = {
        let mut settings = lock(&shared.settings);
        let refuse = settings.api_unauthorized > 0;
        settings.api_unauthorized = settings.api_unauthorized.saturating_sub(1);
        refuse
    };
    if refuse {
        return Unauthorized::Invalid.into_response();
    }
    let owner = match bearer(&shared, &headers) {
        Ok(owner) => owner,
        Err(refused) => return refused.into_response(),
    };
    let mut response = special(&shared, &uri, &headers, &body)
        .await
        .unwrap_or_else(|| echo(&method, &uri, &headers, &body, &owner, &shared));
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("fake_session=s3ss10n; Path=/; HttpOnly"),
    );
    if !uri.path().ends_with("/no-cache-header") {
        response_headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("private, max-age=5"));
    }
    response
}

/// The special paths listed in the module doc.
async fn special(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let path = uri.path();
    let tail = &path[path.find("/api/").map_or(0, |i| i + 4)..];
    let params: BTreeMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if tail == "/echo-body" || tail.starts_with("/echo-body/") {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        return Some(([(header::CONTENT_TYPE, content_type)], body.clone()).into_response());
    }
    if tail == "/redirect" {
        let to = params.get("to").cloned().unwrap_or_default();
        let location = HeaderValue::from_str(&to).ok()?;
        return Some((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
    }
    if tail == "/bytes" {
        let n: usize = params.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        if params.get("chunked").is_some_and(|c| c == "true") {
            let chunks = (0..n.div_ceil(64 * 1024)).map(move |i| {
                let len = (n - i * 64 * 1024).min(64 * 1024);
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; len]))
            });
            return Some(
                axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response(),
            );
        }
        return Some(vec![b'x'; n].into_response());
    }
    if tail == "/hang" {
        let mut released = shared.shutdown.subscribe();
        tokio::select! {
            () = tokio::time::sleep(shared.hang_duration) => {}
            _ = released.wait_for(|down| *down) => {}
        }
        return Some(StatusCode::GATEWAY_TIMEOUT.into_response());
    }
    None
}

/// The JSON echo.
fn echo(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    owner: &TokenOwner,
    shared: &Shared,
) -> Response {
    let mut echoed: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
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
        "body": (body.len() <= 64 * 1024).then(|| String::from_utf8_lossy(body).into_owned()),
        "grant_id": owner.grant.0,
        "client_id": owner.client_id,
        "scope": owner.scope,
        "sub": shared.user.subject,
    }))
    .into_response()
}
