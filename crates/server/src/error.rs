//! One error type for every handler, rendered as RFC 9457 problem+json with a stable
//! `code`. 4xx details say exactly what is wrong; 5xx say nothing about internals (the
//! cause is logged once, here).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokenwarden_service::{ProxyError, ServiceError};
use tracing::error;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:tokenwarden:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code to branch on.
    pub code: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
    www_authenticate: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn unauthorized() -> Self {
        Self {
            www_authenticate: Some("Bearer"),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid credentials",
            )
        }
    }

    pub fn unauthorized_basic() -> Self {
        Self {
            www_authenticate: Some("Basic realm=\"tokenwarden\", charset=\"UTF-8\""),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid email and password",
            )
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The stable `code` (also the proxy's metric label).
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle this request; it has been logged",
        )
    }

    /// Turns a service error into an HTTP error; `basic` picks the Basic challenge for
    /// account routes.
    pub fn from_service(e: ServiceError, basic: bool) -> Self {
        match e {
            ServiceError::InvalidRequest(d) => Self::invalid(d),
            ServiceError::Unauthorized if basic => Self::unauthorized_basic(),
            ServiceError::Unauthorized => Self::unauthorized(),
            ServiceError::Forbidden(d) => Self::new(StatusCode::FORBIDDEN, "forbidden", d),
            ServiceError::NotFound(what) => Self::not_found(what),
            ServiceError::Conflict(d) => Self::new(StatusCode::CONFLICT, "conflict", d),
            ServiceError::RateLimited { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many failed logins for this account; try again later",
                )
            },
            ServiceError::SignupClosed => Self::new(
                StatusCode::FORBIDDEN,
                "signup_closed",
                "account creation is closed on this server",
            ),
            ServiceError::ManagedUnavailable => Self::new(
                StatusCode::BAD_REQUEST,
                "managed_unavailable",
                "managed vaults need the server to be configured with a master key",
            ),
            ServiceError::AppBlocked => Self::new(
                StatusCode::CONFLICT,
                "app_blocked",
                "the app is blocked: token reads, proxy calls, refreshes, imports and connects are refused until it is set active",
            ),
            ServiceError::NeedsReauth => Self::new(
                StatusCode::CONFLICT,
                "needs_reauth",
                "the provider refused the refresh token; connect the account again",
            ),
            ServiceError::TokenExpired => Self::new(
                StatusCode::CONFLICT,
                "token_expired",
                "the access token has expired and the connection has no refresh token; connect again",
            ),
            ServiceError::ProviderUnavailable { retry_after_secs } => Self {
                retry_after: retry_after_secs,
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    "the provider is unavailable; the stored token is unchanged, try again",
                )
            },
            ServiceError::ProviderError(code) => Self::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                format!("the provider refused the request: {code}"),
            ),
            ServiceError::RevocationFailed => Self::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "revocation failed at the provider, so the connection was kept; retry, or delete with ?force=true",
            ),
            ServiceError::Proxy(p) => {
                let status = match p {
                    ProxyError::Unavailable => StatusCode::CONFLICT,
                    ProxyError::Blocked => StatusCode::FORBIDDEN,
                    ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                    ProxyError::Upstream | ProxyError::ResponseTooLarge(_) => {
                        StatusCode::BAD_GATEWAY
                    }
                    ProxyError::RequestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                };
                Self::new(status, p.code(), p.to_string())
            }
            ServiceError::Internal(source) => {
                error!(error = %source, cause = ?std::error::Error::source(&*source), "request failed");
                Self::internal()
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::from_service(e, false)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            type_: format!("urn:tokenwarden:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
