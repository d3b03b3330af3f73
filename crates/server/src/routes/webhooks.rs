//! `/v1/webhooks`: endpoints, secret rotation, test events and the delivery log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use tokenwarden_service::{DeliveryView, NewWebhook, WebhookChanges, WebhookView};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth};
use crate::reveal::Revealed;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An `https://` URL (plain `http://` and private addresses only on a development
    /// server).
    #[schema(max_length = 2048)]
    url: String,
    /// The event types to receive; every type when absent.
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn explicit<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    url: Option<String>,
    /// `null`: every event type from now on.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<Vec<String>>)]
    events: Option<Option<Vec<String>>>,
    /// Disabling holds its deliveries; enabling sends them.
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

/// An endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    id: String,
    url: String,
    /// The event types it receives; `null`: every type.
    events: Option<Vec<String>>,
    enabled: bool,
    /// Why the server disabled it (the receiver answered 410).
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<WebhookView> for Webhook {
    fn from(v: WebhookView) -> Self {
        Self {
            id: v.id,
            url: v.url,
            events: v.events,
            enabled: v.enabled,
            disabled_reason: v.disabled_reason,
            description: v.description,
            created_at: v.created_at,
        }
    }
}

/// A new endpoint. `secret` (`whsec_...`) is shown this once: store it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    webhook: Webhook,
    #[schema(value_type = String, example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Revealed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecretAnswer {
    /// The new secret; the old one also signs deliveries for 24 hours.
    #[schema(value_type = String)]
    secret: Revealed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// The `webhook-id` the test delivery carries.
    event_id: String,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    id: String,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
}

impl From<DeliveryView> for Delivery {
    fn from(v: DeliveryView) -> Self {
        Self {
            id: v.id,
            event_id: v.event_id,
            event_type: v.event_type,
            attempt: v.attempt,
            status_code: v.status_code,
            error: v.error,
            at: v.at,
            next_attempt_at: v.next_attempt_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Register a webhook endpoint (admin).
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    security(("api_key" = [])),
    responses(
        (status = 201, body = WebhookCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let created = state
        .services
        .create_webhook(
            &caller,
            NewWebhook {
                url: body.url,
                events: body.events,
                description: body.description,
            },
            &ctx,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: created.view.into(),
            secret: Revealed::new(created.secret.expose_secret()),
        }),
    ))
}

/// The vault's webhook endpoints (admin); never their secrets.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<Webhook>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
) -> ApiResult<Json<Vec<Webhook>>> {
    let list = state.services.list_webhooks(&caller).await?;
    Ok(Json(list.into_iter().map(Webhook::from).collect()))
}

/// Change an endpoint (admin).
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    request_body = UpdateWebhook,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, body = Webhook),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<Webhook>> {
    let view = state
        .services
        .update_webhook(
            &caller,
            &id,
            WebhookChanges {
                url: body.url,
                events: body.events,
                enabled: body.enabled,
                description: body.description,
            },
            &ctx,
        )
        .await?;
    Ok(Json(view.into()))
}

/// Delete an endpoint with its pending deliveries and log (admin).
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.services.delete_webhook(&caller, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (admin); the old one also signs for 24 hours.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, body = WebhookSecretAnswer),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookSecretAnswer>> {
    let secret = state
        .services
        .rotate_webhook_secret(&caller, &id, &ctx)
        .await?;
    Ok(Json(WebhookSecretAnswer {
        secret: Revealed::new(secret.expose_secret()),
    }))
}

/// Send a `webhook.test` event to this endpoint (admin).
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 202, body = TestQueued),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TestQueued>)> {
    let event_id = state.services.test_webhook(&caller, &id, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { event_id })))
}

/// The endpoint's delivery log, newest first (admin).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, body = Vec<Delivery>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
    Path(id): Path<String>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("limit must be a number from 1 to 500"))?;
    let list = state
        .services
        .webhook_deliveries(&caller, &id, query.limit)
        .await?;
    Ok(Json(list.into_iter().map(Delivery::from).collect()))
}
