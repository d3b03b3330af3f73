//! `GET /v1/audit`: the vault's audit log, newest first.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{AuditId, Role};
use tokenwarden_service::MAX_AUDIT_PAGE;
use tokenwarden_store::AuditRecord;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiKeyAuth;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Records per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only records older than this record id (the previous page's last `id`).
    #[param(pattern = "^aud_[a-z0-9]{20}$")]
    before: Option<String>,
}

/// One audit record. It never holds a secret: targets are ids, and a proxy call's path
/// is recorded without its query string.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(value_type = String, example = "aud_3k9x2m4n5p6q7r8s9t0v")]
    id: String,
    at: DateTime<Utc>,
    /// The API key that acted, if one did.
    key_id: Option<String>,
    /// The account that acted (vault creation, a member's key), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[schema(example = "connection.token")]
    action: String,
    target: Option<String>,
    #[schema(example = "success")]
    outcome: String,
    ip: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id.to_string(),
            at: r.at,
            key_id: r.key_id,
            account_id: r.account_id,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            ip: r.ip,
        }
    }
}

/// The vault's audit records, newest first (admin role, unscoped key). When a page is
/// full, a `Link: <...>; rel="next"` header names the next one.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    security(("api_key" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = [AuditEntry]),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _ctx): ApiKeyAuth,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<(HeaderMap, Json<Vec<AuditEntry>>)> {
    caller.require(Role::Admin)?;
    let Query(query) = query.map_err(|_| {
        ApiError::invalid(format!(
            "limit must be a number from 1 to {MAX_AUDIT_PAGE}, before an audit record id"
        ))
    })?;
    let limit = query.limit.unwrap_or(100);
    let before = query
        .before
        .as_deref()
        .map(AuditId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("before: not an audit record id"))?;
    let records = state
        .services
        .list_audit(&caller, limit, before.as_ref())
        .await?;
    let mut headers = HeaderMap::new();
    if records.len() == limit as usize
        && let Some(last) = records.last()
        && let Ok(link) = HeaderValue::from_str(&format!(
            "</v1/audit?limit={limit}&before={}>; rel=\"next\"",
            last.id
        ))
    {
        headers.insert(header::LINK, link);
    }
    Ok((
        headers,
        Json(records.into_iter().map(AuditEntry::from).collect()),
    ))
}
