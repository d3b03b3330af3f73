//! `/v1/vaults`: what an account does with its email and password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{ApiKeyId, Name, Roles, VaultId};
use tokenwarden_service::VaultView;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AccountAuth, ApiJson};
use crate::reveal::Revealed;
use crate::routes::api_keys::{ApiKeyCreated, CreateApiKey};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVault {
    name: Name,
    /// Also wrap the data key under the server master key, so the server can refresh
    /// tokens with no caller present. Needs a configured master key.
    #[serde(default)]
    managed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Vault {
    id: VaultId,
    name: Name,
    managed: bool,
    created_at: DateTime<Utc>,
}

impl From<VaultView> for Vault {
    fn from(v: VaultView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            managed: v.managed,
            created_at: v.created_at,
        }
    }
}

/// The vault's first admin key; `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirstApiKey {
    id: ApiKeyId,
    #[schema(value_type = String)]
    key: Revealed,
    roles: Roles,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VaultCreated {
    id: VaultId,
    name: Name,
    managed: bool,
    created_at: DateTime<Utc>,
    api_key: FirstApiKey,
}

/// Create a vault and its first admin API key.
#[utoipa::path(
    post,
    path = "/v1/vaults",
    tag = "vaults",
    request_body = CreateVault,
    security(("account" = [])),
    responses(
        (status = 201, body = VaultCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_vault(
    State(state): State<AppState>,
    AccountAuth(session, ctx): AccountAuth,
    ApiJson(body): ApiJson<CreateVault>,
) -> ApiResult<(StatusCode, Json<VaultCreated>)> {
    let created = state
        .services
        .create_vault(&session, body.name, body.managed, &ctx)
        .await?;
    let v = created.vault;
    let k = created.api_key;
    Ok((
        StatusCode::CREATED,
        Json(VaultCreated {
            id: v.id,
            name: v.name,
            managed: v.managed,
            created_at: v.created_at,
            api_key: FirstApiKey {
                key: Revealed::new(k.key.expose_secret()),
                id: k.id,
                roles: k.roles,
            },
        }),
    ))
}

/// The vaults the account is a member of.
#[utoipa::path(
    get,
    path = "/v1/vaults",
    tag = "vaults",
    security(("account" = [])),
    responses(
        (status = 200, body = Vec<Vault>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_vaults(
    State(state): State<AppState>,
    AccountAuth(session, _): AccountAuth,
) -> ApiResult<Json<Vec<Vault>>> {
    let vaults = state.services.list_vaults(&session).await?;
    Ok(Json(vaults.into_iter().map(Vault::from).collect()))
}

/// A member issues an API key for a vault with their password.
#[utoipa::path(
    post,
    path = "/v1/vaults/{vault_id}/api-keys",
    tag = "vaults",
    request_body = CreateApiKey,
    security(("account" = [])),
    params(("vault_id" = String, Path, description = "The vault's id")),
    responses(
        (status = 201, body = ApiKeyCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_vault_api_key(
    State(state): State<AppState>,
    AccountAuth(session, ctx): AccountAuth,
    Path(vault_id): Path<String>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    let vault_id = VaultId::parse(&vault_id).map_err(|_| ApiError::not_found("vault"))?;
    let created = state
        .services
        .create_key_as_member(&session, &vault_id, body.into_request()?, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_keys_debug_output_hides_the_key() {
        let first = FirstApiKey {
            id: ApiKeyId::generate(&mut rand::thread_rng()),
            key: Revealed::new("twk_abc_SECRETSECRET"),
            roles: Roles::admin(),
        };
        let debug = format!("{first:?}");
        assert!(!debug.contains("SECRETSECRET"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
