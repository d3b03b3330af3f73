//! `/v1/apps`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{AppId, AppKey, Scopes};
use tokenwarden_service::{AppChanges, AppStatus, AppView, NewApp};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    key: AppKey,
    /// A provider key (see `GET /v1/providers`).
    provider: String,
    /// 1 to 2048 bytes, no control characters.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    client_id: String,
    /// 1 to 2048 bytes, no control characters.
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")]
    client_secret: SecretString,
    #[serde(default)]
    scopes: Scopes,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    #[serde(default)]
    status: Option<StatusValue>,
    #[serde(default)]
    scopes: Option<Scopes>,
    /// 1 to 2048 bytes, no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    client_id: Option<String>,
    /// 1 to 2048 bytes, no control characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password, min_length = 1, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")]
    client_secret: Option<SecretString>,
}

/// `active` or `blocked`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum StatusValue {
    Active,
    Blocked,
}

/// An app; `redirect_uri` is what to register at the provider. Never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct App {
    id: AppId,
    key: AppKey,
    provider: String,
    client_id: String,
    scopes: Scopes,
    /// `active` or `blocked`.
    status: &'static str,
    redirect_uri: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AppView> for App {
    fn from(v: AppView) -> Self {
        let r = v.record;
        Self {
            id: r.id,
            key: r.key,
            provider: r.provider_key,
            client_id: r.client_id,
            scopes: r.scopes,
            status: r.status.as_str(),
            redirect_uri: v.redirect_uri,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn app_key(key: &str) -> ApiResult<AppKey> {
    AppKey::parse(key).map_err(|_| ApiError::not_found("app"))
}

/// Register an OAuth app (admin). The client secret is encrypted under the vault's
/// data key.
#[utoipa::path(
    post,
    path = "/v1/apps",
    tag = "apps",
    request_body = CreateApp,
    security(("api_key" = [])),
    responses(
        (status = 201, body = App),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_app(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<CreateApp>,
) -> ApiResult<(StatusCode, Json<App>)> {
    let view = state
        .services
        .create_app(
            &caller,
            NewApp {
                key: body.key,
                provider: body.provider,
                client_id: body.client_id,
                client_secret: body.client_secret,
                scopes: body.scopes,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// The vault's apps (any role), filtered by the key's scope.
#[utoipa::path(
    get,
    path = "/v1/apps",
    tag = "apps",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<App>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_apps(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
) -> ApiResult<Json<Vec<App>>> {
    let apps = state.services.list_apps(&caller).await?;
    Ok(Json(apps.into_iter().map(App::from).collect()))
}

/// Change an app (admin): block or unblock it, change scopes or credentials.
#[utoipa::path(
    patch,
    path = "/v1/apps/{key}",
    tag = "apps",
    request_body = UpdateApp,
    security(("api_key" = [])),
    params(("key" = String, Path, description = "The app's key")),
    responses(
        (status = 200, body = App),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_app(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<UpdateApp>,
) -> ApiResult<Json<App>> {
    let key = app_key(&key)?;
    let status = body.status.map(|s| match s {
        StatusValue::Active => AppStatus::Active,
        StatusValue::Blocked => AppStatus::Blocked,
    });
    let view = state
        .services
        .update_app(
            &caller,
            &key,
            AppChanges {
                status,
                scopes: body.scopes,
                client_id: body.client_id,
                client_secret: body.client_secret,
            },
            &ctx,
        )
        .await?;
    Ok(Json(view.into()))
}

/// Delete an app (admin); refused while it has connections.
#[utoipa::path(
    delete,
    path = "/v1/apps/{key}",
    tag = "apps",
    security(("api_key" = [])),
    params(("key" = String, Path, description = "The app's key")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_app(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let key = app_key(&key)?;
    state.services.delete_app(&caller, &key, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
