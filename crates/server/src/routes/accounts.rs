//! `POST /v1/accounts`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokenwarden_domain::{AccountId, Email, Password};
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, Ctx};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    email: Email,
    password: Password,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    id: AccountId,
    email: Email,
}

/// Create an account (when signup is open).
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = CreateAccount,
    responses(
        (status = 201, description = "The account", body = AccountCreated),
        (status = 400, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Signup is closed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_account(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<AccountCreated>)> {
    let (id, email) = state
        .services
        .sign_up(body.email, body.password, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(AccountCreated { id, email })))
}
