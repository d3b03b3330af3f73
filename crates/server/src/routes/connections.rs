//! `/v1/connections`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokenwarden_domain::{AppKey, ConnectionId, Role, Scopes};
use tokenwarden_service::{
    ConnectionListFilter, ConnectionStatus, ConnectionView, ImportConnection, TokenOptions,
    TokenView,
};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth, BearerKey};
use crate::reveal::Revealed;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Connection {
    id: ConnectionId,
    app: AppKey,
    provider: String,
    /// `active`, `failing` (refreshes fail transiently; tokens kept, retried),
    /// `needs_reauth` (connect again), `expired` (nothing to refresh with) or `revoked`.
    #[schema(value_type = String, example = "active")]
    status: &'static str,
    /// Why, in words (never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    scopes: Scopes,
    /// When the stored access token expires.
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    refreshed_at: Option<DateTime<Utc>>,
    /// When a refresh is due: ahead of expiry, before the refresh token dies of
    /// idleness, or the next retry of a failing connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_refresh_at: Option<DateTime<Utc>>,
}

impl From<ConnectionView> for Connection {
    fn from(v: ConnectionView) -> Self {
        Self {
            id: v.id,
            app: v.app,
            provider: v.provider,
            status: v.status,
            status_reason: v.status_reason,
            scopes: v.scopes,
            expires_at: v.expires_at,
            created_at: v.created_at,
            refreshed_at: v.refreshed_at,
            next_refresh_at: v.next_refresh_at,
        }
    }
}

/// A fresh access token. Never the refresh token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    #[schema(value_type = String)]
    access_token: Revealed,
    token_type: String,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    /// Whether this call got a newly refreshed token.
    refreshed: bool,
    /// Provider fields kept from the token response (e.g. `instance_url`).
    #[schema(value_type = Object)]
    extras: Map<String, Value>,
}

impl From<TokenView> for Token {
    fn from(v: TokenView) -> Self {
        Self {
            access_token: Revealed::from(v.access_token),
            token_type: v.token_type,
            expires_at: v.expires_at,
            scopes: v.scopes,
            refreshed: v.refreshed,
            extras: v.extras,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    app: AppKey,
    connection_id: ConnectionId,
    /// 1 to 16384 visible ASCII characters (it is sent in an `Authorization` header).
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 16384, pattern = "^[\\x21-\\x7e]+$")]
    access_token: SecretString,
    /// 1 to 16384 bytes.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password, min_length = 1, max_length = 16384)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    scopes: Option<Scopes>,
    /// Values for the provider's URL parameters (`tenant`, `subdomain`, `shop`).
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Refresh first unless the token stays valid at least this many seconds.
    #[param(minimum = 0, maximum = 86400)]
    min_ttl: Option<u64>,
    /// Refresh even if the token is still fresh.
    force_refresh: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even if revocation at the provider fails.
    force: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only connections with this status.
    #[param(value_type = Option<String>, example = "failing")]
    status: Option<String>,
    /// Only connections of this app.
    #[param(value_type = Option<String>)]
    app: Option<String>,
    /// Only connections due for refresh within this many seconds (already due ones
    /// included): what a background refresher asks for.
    #[param(minimum = 0, maximum = 31536000)]
    expiring_within: Option<u64>,
}

fn connection_id(id: &str) -> ApiResult<ConnectionId> {
    ConnectionId::parse(id).map_err(|_| ApiError::not_found("connection"))
}

/// The vault's connections (read, proxy or refresh role), filtered by the key's scope.
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "connections",
    security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = Vec<Connection>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_connections(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Connection>>> {
    let Query(query) = query.map_err(|_| {
        ApiError::invalid("the filters are status, app and expiring_within (a number of seconds)")
    })?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(ConnectionStatus::parse(s).ok_or_else(|| {
            ApiError::invalid("status must be active, failing, needs_reauth, expired or revoked")
        })?),
    };
    let app = match query.app.as_deref() {
        None => None,
        Some(a) => Some(AppKey::parse(a).map_err(|_| ApiError::invalid("app is not an app key"))?),
    };
    if query.expiring_within.is_some_and(|s| s > 31_536_000) {
        return Err(ApiError::invalid(
            "expiring_within must be at most 31536000 seconds (a year)",
        ));
    }
    let filter = ConnectionListFilter {
        status,
        app,
        expiring_within_secs: query.expiring_within,
    };
    let list = state.services.list_connections(&caller, filter).await?;
    Ok(Json(list.into_iter().map(Connection::from).collect()))
}

/// Import tokens obtained elsewhere (connect role).
#[utoipa::path(
    post,
    path = "/v1/connections",
    tag = "connections",
    request_body = ImportRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, body = Connection),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn import_connection(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<ImportRequest>,
) -> ApiResult<(StatusCode, Json<Connection>)> {
    if body
        .refresh_token
        .as_ref()
        .is_some_and(|r| r.expose_secret().is_empty() || r.expose_secret().len() > 16 * 1024)
    {
        return Err(ApiError::invalid("refresh_token must be 1 to 16384 bytes"));
    }
    if body.access_token.expose_secret().is_empty()
        || body.access_token.expose_secret().len() > 16 * 1024
    {
        return Err(ApiError::invalid("access_token must be 1 to 16384 bytes"));
    }
    // The token goes into an `Authorization` header (the proxy, revocation): one that
    // cannot be sent there is refused now rather than failing every later use.
    if !body
        .access_token
        .expose_secret()
        .bytes()
        .all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid(
            "access_token must be visible ASCII characters without spaces",
        ));
    }
    let view = state
        .services
        .import_connection(
            &caller,
            ImportConnection {
                app: body.app,
                connection_id: body.connection_id,
                access_token: body.access_token,
                refresh_token: body.refresh_token,
                expires_at: body.expires_at,
                scopes: body.scopes,
                params: body.params,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// One connection's metadata.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}",
    tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Connection),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_connection(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    caller.require_any(&[Role::Read, Role::Proxy])?;
    let id = connection_id(&id)?;
    Ok(Json(
        state.services.get_connection(&caller, &id).await?.into(),
    ))
}

/// A valid access token (read role), refreshed first when it expires within the skew
/// or `min_ttl`, or when `force_refresh`. Concurrent callers cause one refresh.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/token",
    tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path), TokenQuery),
    responses(
        (status = 200, body = Token),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "needs_reauth, token_expired or app_blocked", body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_token(
    State(state): State<AppState>,
    BearerKey(key, ctx): BearerKey,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Token>> {
    // The key and the connection in one read, the role checked with the key (so a key
    // without `read` hears 403 before any 400); a malformed id still answers 401 before
    // its 404, as on every route.
    let id = connection_id(&id);
    let auth = state
        .services
        .authenticate_reader(&key, id.as_ref().ok())
        .await?;
    let Query(query) = query.map_err(|_| {
        ApiError::invalid("min_ttl must be a number of seconds and force_refresh true or false")
    })?;
    if query.min_ttl.is_some_and(|t| t > 86_400) {
        return Err(ApiError::invalid("min_ttl must be at most 86400 seconds"));
    }
    let id = id?;
    let view = state
        .services
        .token(
            auth,
            &id,
            TokenOptions {
                min_ttl_secs: query.min_ttl,
                force_refresh: query.force_refresh.unwrap_or(false),
            },
            &ctx,
        )
        .await?;
    Ok(Json(view.into()))
}

/// Refresh now (connect or refresh role). Answers the connection, never the token:
/// only `read` keys receive tokens.
#[utoipa::path(
    post,
    path = "/v1/connections/{id}/refresh",
    tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Connection),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "needs_reauth, app_blocked or no refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh_connection(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    caller.require_any(&[Role::Connect, Role::Refresh])?;
    let id = connection_id(&id)?;
    Ok(Json(
        state
            .services
            .refresh_connection(&caller, &id, &ctx)
            .await?
            .into(),
    ))
}

/// Revoke at the provider where it can (RFC 7009) and delete (connect role).
#[utoipa::path(
    delete,
    path = "/v1/connections/{id}",
    tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path), DeleteQuery),
    responses(
        (status = 204, description = "Revoked and deleted"),
        (status = 400, description = "`force` is not true or false", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Revocation failed; the connection is kept", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_connection(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Connect)?;
    let Query(query) = query.map_err(|_| ApiError::invalid("force must be true or false"))?;
    let id = connection_id(&id)?;
    state
        .services
        .delete_connection(&caller, &id, query.force.unwrap_or(false), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_debug_output_hides_the_access_token() {
        let token = Token {
            access_token: Revealed::new("ya29.ACCESSSECRET"),
            token_type: "Bearer".into(),
            expires_at: None,
            scopes: vec!["profile".into()],
            refreshed: false,
            extras: Map::new(),
        };
        let debug = format!("{token:?}");
        assert!(!debug.contains("ACCESSSECRET"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(
            serde_json::to_string(&token)
                .unwrap()
                .contains("ACCESSSECRET")
        );
    }
}
