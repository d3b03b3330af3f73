//! Connect sessions and the OAuth callback.

use axum::Json;
use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{AppKey, ConnectSessionId, ConnectionId, Scopes};
use tokenwarden_service::{CallbackOutcome, CallbackParams, CallbackRejected, NewConnectSession};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth, Ctx};
use crate::pages;
use crate::reveal::Revealed;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectSession {
    /// The app's key.
    app: AppKey,
    /// Your name for the connection; connecting again with an existing one replaces
    /// its tokens. Generated when absent.
    #[serde(default)]
    connection_id: Option<ConnectionId>,
    /// Scopes to ask for instead of the app's.
    #[serde(default)]
    scopes: Option<Scopes>,
    /// Where to send the browser afterwards; its origin must be allowed by
    /// TOKENWARDEN_RETURN_ORIGINS.
    #[serde(default)]
    return_to: Option<String>,
    /// Values for the provider's URL parameters (`tenant`, `subdomain`, `shop`): exactly
    /// the ones `GET /v1/providers` lists under `params`.
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionCreated {
    id: ConnectSessionId,
    connection_id: ConnectionId,
    /// Send the person's browser here.
    #[schema(value_type = String)]
    authorization_url: Revealed,
    /// A link a person can open in any browser without an API key: it shows a page,
    /// and its button (once) sends the browser to the provider. Shown this once.
    #[schema(value_type = String)]
    connect_link: Revealed,
    /// Until when `connect_link` can be used (TOKENWARDEN_CONNECT_LINK_TTL_SECONDS).
    connect_link_expires_at: DateTime<Utc>,
    /// Until when `authorization_url` (its state) can be used.
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionStatus {
    id: ConnectSessionId,
    /// `pending`, `completed`, `failed` or `expired`.
    status: &'static str,
    connection_id: ConnectionId,
    error: Option<String>,
    expires_at: DateTime<Utc>,
}

/// Start connecting an account (connect role).
#[utoipa::path(
    post,
    path = "/v1/connect-sessions",
    tag = "connect",
    request_body = CreateConnectSession,
    security(("api_key" = [])),
    responses(
        (status = 201, body = ConnectSessionCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_connect_session(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<CreateConnectSession>,
) -> ApiResult<(StatusCode, Json<ConnectSessionCreated>)> {
    let created = state
        .services
        .create_connect_session(
            &caller,
            NewConnectSession {
                app: body.app,
                connection_id: body.connection_id,
                scopes: body.scopes,
                return_to: body.return_to,
                params: body.params,
            },
            &ctx,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectSessionCreated {
            connect_link: Revealed::new(created.connect_link.expose_secret()),
            connect_link_expires_at: created.connect_link_expires_at,
            id: created.id,
            connection_id: created.connection_id,
            authorization_url: Revealed::from(created.authorization_url),
            expires_at: created.expires_at,
        }),
    ))
}

/// A connect session's status (connect role).
#[utoipa::path(
    get,
    path = "/v1/connect-sessions/{id}",
    tag = "connect",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, body = ConnectSessionStatus),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_connect_session(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectSessionStatus>> {
    caller.require(tokenwarden_domain::Role::Connect)?;
    let id = ConnectSessionId::parse(&id).map_err(|_| ApiError::not_found("connect session"))?;
    let v = state.services.connect_session_status(&caller, &id).await?;
    Ok(Json(ConnectSessionStatus {
        id: v.id,
        status: v.status,
        connection_id: v.connection_id,
        error: v.error,
        expires_at: v.expires_at,
    }))
}

/// The callback's query as OpenAPI shows it; `CallbackParams::from_query` reads it.
/// `Debug` is written by hand: `code` and `state` must never be printed.
#[derive(IntoParams)]
#[expect(dead_code, reason = "describes the query for OpenAPI only")]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

impl std::fmt::Debug for CallbackQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackQuery")
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

fn with_query(url: &str, name: &str, value: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair(name, value);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The provider sends the browser here after consent. Exchanges the code and stores
/// the connection; answers a page, or 303 to the session's `return_to`.
#[utoipa::path(
    get,
    path = "/v1/oauth/callback/{app_id}",
    tag = "connect",
    params(("app_id" = String, Path, description = "The app's id"), CallbackQuery),
    responses(
        (status = 200, description = "Connected", content_type = "text/html", body = String),
        (status = 303, description = "Back to return_to with connection_id or error"),
        (status = 400, description = "Unknown, used, expired or foreign state, or a repeated parameter; nothing changed", content_type = "text/html", body = String),
        (status = 502, description = "The provider refused (an `error` answer, a failed code exchange, a wrong `iss`): the session failed", content_type = "text/html", body = String),
    )
)]
pub async fn oauth_callback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(app_id): Path<String>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // `extra` is kept only where the provider's definition names it (QuickBooks' realmId).
    let params = CallbackParams::from_query(
        query.as_deref(),
        crate::routes::links::request_cookies(&headers),
    );
    let outcome = match params {
        Ok(params) => state.services.oauth_callback(&app_id, params, &ctx).await,
        Err(rejected) => Err(rejected),
    };
    match outcome {
        Ok(CallbackOutcome::Connected {
            connection_id,
            return_to: Some(to),
        }) => {
            Redirect::to(&with_query(&to, "connection_id", connection_id.as_str())).into_response()
        }
        Ok(CallbackOutcome::Connected {
            connection_id,
            return_to: None,
        }) => pages::page(
            StatusCode::OK,
            "Connected",
            &format!(
                "The account is connected as <code>{}</code>. You can close this window.",
                pages::escape(connection_id.as_str())
            ),
        ),
        Ok(CallbackOutcome::Failed {
            error,
            return_to: Some(to),
        }) => Redirect::to(&with_query(&to, "error", error)).into_response(),
        Ok(CallbackOutcome::Failed {
            error,
            return_to: None,
        }) => pages::page(
            StatusCode::BAD_GATEWAY,
            "Connection failed",
            &format!(
                "The account could not be connected (<code>{}</code>). Start again from the application.",
                pages::escape(error)
            ),
        ),
        Err(CallbackRejected::Internal(e)) => {
            let _ = ApiError::from(e);
            pages::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not finish the connection; it has been logged.",
            )
        }
        Err(rejected) => pages::page(
            StatusCode::BAD_REQUEST,
            "Sign-in link not valid",
            &pages::escape(&rejected.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sessions_debug_output_hides_its_state_and_link() {
        let created = ConnectSessionCreated {
            id: ConnectSessionId::generate(&mut rand::thread_rng()),
            connection_id: ConnectionId::parse("c1").unwrap(),
            authorization_url: Revealed::new("https://p.example/authorize?state=STATESECRET"),
            connect_link: Revealed::new("https://tw.example/connect/LINKSECRET"),
            connect_link_expires_at: Utc::now(),
            expires_at: Utc::now(),
        };
        let debug = format!("{created:?}");
        assert!(!debug.contains("STATESECRET"), "{debug}");
        assert!(!debug.contains("LINKSECRET"), "{debug}");
    }
}
