//! Requests on a persona's own paths: dispatched to the authorize and token handlers,
//! or taken as revocations the way the persona's provider takes them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::persona::{TokenSource, matches};
use crate::routes::{authorize, token};
use crate::state::{Shared, lock};

pub(crate) async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(persona) = shared.settings().persona else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = uri.path();
    if method == Method::GET && path == persona.authorize_path {
        let params: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        return authorize::authorize(State(shared), Query(params)).await;
    }
    if method == Method::POST
        && (path == persona.token_path || persona.refresh_path.as_deref() == Some(path))
    {
        return token::token(State(shared), headers, body).await;
    }
    if let Some(revoke) = &persona.revoke
        && method.as_str() == revoke.method
        && let Some(in_path) = matches(&revoke.path, path)
    {
        shared.count(|c| c.revocations += 1);
        let query: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let find = |pairs: &[(String, String)], name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let token = match &revoke.token {
            TokenSource::Form(name) => {
                let form: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                find(&form, name)
            }
            TokenSource::Json(name) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get(name).and_then(|t| t.as_str()).map(str::to_owned)),
            TokenSource::Query(name) => find(&query, name),
            TokenSource::Bearer => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned),
            TokenSource::Path => in_path,
        };
        let Some(token) = token else {
            return (StatusCode::BAD_REQUEST, "no token").into_response();
        };
        let mut store = lock(&shared.store);
        if let Some(record) = store.access.get_mut(&token) {
            record.revoked = true;
        } else if let Some(grant) = store.refresh.get(&token).map(|r| r.grant) {
            store.revoke_grant(grant);
        }
        return StatusCode::OK.into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
