//! `/v1/api-keys` and `/v1/whoami`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{ApiKeyId, KeyScope, Name, Roles, VaultId};
use tokenwarden_service::{ApiKeyView, CreatedApiKey, NewKeyRequest};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth};
use crate::reveal::Revealed;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    name: Name,
    roles: Roles,
    #[serde(default)]
    scope: Option<KeyScope>,
    /// Lifetime in seconds (1 to ten years); no expiry when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 315_360_000)]
    expires_in: Option<u64>,
}

impl CreateApiKey {
    pub fn into_request(self) -> ApiResult<NewKeyRequest> {
        Ok(NewKeyRequest::new(
            self.name,
            self.roles,
            self.scope.unwrap_or_default(),
            self.expires_in,
        )?)
    }
}

/// A new key. `key` is shown this once; store it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    id: ApiKeyId,
    #[schema(value_type = String)]
    key: Revealed,
    name: Name,
    roles: Roles,
    scope: KeyScope,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<CreatedApiKey> for ApiKeyCreated {
    fn from(c: CreatedApiKey) -> Self {
        Self {
            key: Revealed::new(c.key.expose_secret()),
            id: c.id,
            name: c.name,
            roles: c.roles,
            scope: c.scope,
            created_at: c.created_at,
            expires_at: c.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeySummary {
    id: ApiKeyId,
    name: Name,
    roles: Roles,
    scope: KeyScope,
    /// `active`, `expired` or `revoked`.
    #[schema(example = "active")]
    status: &'static str,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyView> for ApiKeySummary {
    fn from(v: ApiKeyView) -> Self {
        let r = v.record;
        Self {
            id: r.id,
            name: r.name,
            roles: r.roles,
            scope: r.scope,
            status: v.status.as_str(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Whoami {
    vault_id: VaultId,
    key_id: ApiKeyId,
    roles: Roles,
    scope: KeyScope,
}

/// Create an API key (admin). Roles and scope must be equal to or narrower than the
/// calling key's.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    request_body = CreateApiKey,
    security(("api_key" = [])),
    responses(
        (status = 201, body = ApiKeyCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    let created = state
        .services
        .create_key(&caller, body.into_request()?, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// List the vault's API keys (admin); never their secrets.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<ApiKeySummary>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
) -> ApiResult<Json<Vec<ApiKeySummary>>> {
    let keys = state.services.list_keys(&caller).await?;
    Ok(Json(keys.into_iter().map(ApiKeySummary::from).collect()))
}

/// Delete (revoke) an API key (admin): it fails with 401 from then on.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_api_key(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(tokenwarden_domain::Role::Admin)?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::not_found("api key"))?;
    state.services.revoke_key(&caller, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is calling: the key's vault, id, roles and scope.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "api-keys",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Whoami),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn whoami(ApiKeyAuth(caller, _): ApiKeyAuth) -> Json<Whoami> {
    Json(Whoami {
        vault_id: caller.vault_id().clone(),
        key_id: caller.key_id().clone(),
        roles: caller.roles(),
        scope: caller.scope().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_keys_debug_output_hides_the_key() {
        let created = ApiKeyCreated {
            id: ApiKeyId::generate(&mut rand::thread_rng()),
            key: Revealed::new("twk_abc_SECRETSECRET"),
            name: Name::parse("ci").unwrap(),
            roles: Roles::admin(),
            scope: KeyScope::default(),
            created_at: Utc::now(),
            expires_at: None,
        };
        let debug = format!("{created:?}");
        assert!(!debug.contains("SECRETSECRET"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(
            serde_json::to_string(&created)
                .unwrap()
                .contains("SECRETSECRET")
        );
    }
}
