//! `POST /revoke` (RFC 7009).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::routes::client_auth::{authenticate, param};
use crate::routes::form::parse_form;
use crate::routes::oauth_error::OAuthError;
use crate::state::{Shared, lock};

pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.count(|c| c.revocations += 1);
    let settings = shared.settings();
    let result = parse_form(&headers, &body).and_then(|form| {
        let client = authenticate(&shared, settings.client_auth, &headers, &form)?;
        let token =
            param(&form, "token").ok_or_else(|| OAuthError::invalid_request("missing token"))?;
        let mut store = lock(&shared.store);
        // The hint is only a hint (RFC 7009 §2.1): look in both tables.
        if let Some(record) = store.access.get(token).cloned() {
            let owner = store.grants.get(&record.grant).map(|g| g.client_id.clone());
            if owner.as_deref() == Some(client.client_id.as_str())
                && let Some(at) = store.access.get_mut(token)
            {
                at.revoked = true;
            }
        } else if let Some(record) = store.refresh.get(token).cloned() {
            let owner = store.grants.get(&record.grant).map(|g| g.client_id.clone());
            // Revoking a refresh token ends the whole grant (RFC 7009 §2.1).
            if owner.as_deref() == Some(client.client_id.as_str()) {
                store.revoke_grant(record.grant);
            }
        }
        // Unknown, foreign or already revoked tokens also answer 200
        // (RFC 7009 §2.2).
        Ok(())
    });
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.render(&crate::Quirks::default()),
    }
}
