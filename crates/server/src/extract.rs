//! Extractors: the authenticated caller (Bearer key or Basic account) and JSON bodies
//! whose every rejection is a problem+json naming the field.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use serde::de::DeserializeOwned;
use tokenwarden_domain::Password;
use tokenwarden_service::{AccountSession, Caller, RequestContext};

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted (JSON documents here are small).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The request's client address, for the audit log.
pub fn request_context(parts: &Parts) -> RequestContext {
    RequestContext {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string()),
    }
}

/// An authenticated API key (`Authorization: Bearer twk_...`).
#[derive(Debug)]
pub struct ApiKeyAuth(pub Caller, pub RequestContext);

impl FromRequestParts<AppState> for ApiKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = state.services.authenticate(bearer(parts)?).await?;
        Ok(Self(caller, request_context(parts)))
    }
}

/// The text of `Authorization: Bearer ...`, or 401.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(ApiError::unauthorized)
}

/// A presented but not yet authenticated API key, for a handler that authenticates it
/// together with what the request names ([`Services::authenticate_reader`]).
/// Missing or not Bearer: 401, as [`ApiKeyAuth`].
///
/// [`Services::authenticate_reader`]: tokenwarden_service::Services::authenticate_reader
pub struct BearerKey(pub String, pub RequestContext);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BearerKey").finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for BearerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(Self(bearer(parts)?.to_owned(), request_context(parts)))
    }
}

/// A signed-in account (`Authorization: Basic base64(email:password)`).
#[derive(Debug)]
pub struct AccountAuth(pub AccountSession, pub RequestContext);

impl FromRequestParts<AppState> for AccountAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let encoded = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
            })
            .ok_or_else(ApiError::unauthorized_basic)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(ApiError::unauthorized_basic)?;
        let (email, password) = decoded
            .split_once(':')
            .ok_or_else(ApiError::unauthorized_basic)?;
        let password = Password::parse_login(password.to_owned())
            .map_err(|_| ApiError::unauthorized_basic())?;
        let ctx = request_context(parts);
        let session = state
            .services
            .login(email, password, &ctx)
            .await
            .map_err(|e| ApiError::from_service(e, true))?;
        Ok(Self(session, ctx))
    }
}

/// A JSON body. Wrong content type: 415; too large: 413; bad syntax, wrong types,
/// missing or unknown fields, invalid values: 400 with the field's path. serde's own
/// messages can quote the offending value, so they are cut before it: an error never
/// echoes what may be a secret typed into the wrong field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// serde messages look like `invalid type: string "hunter2", expected ...`; keep the
/// kind of problem and what was expected, drop the value.
fn redact_serde_message(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let expected = rest
                .find(", expected ")
                .map(|i| &rest[i + 2..])
                .unwrap_or("");
            return format!(
                "{}{}",
                prefix.trim_end_matches([':', ' ']),
                if expected.is_empty() {
                    String::new()
                } else {
                    format!(", {expected}")
                }
            );
        }
    }
    if let Some(i) = msg.find("unknown variant `") {
        return format!("{}unknown variant", &msg[..i]);
    }
    msg.to_owned()
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body must be at most {} bytes", BODY_LIMIT),
                )
            } else {
                ApiError::invalid("the body could not be read")
            }
        })?;
        // serde lets a struct be read from a JSON array (fields in order); the contract
        // says object, and accepting arrays would hide client bugs.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let name = std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("object");
            return Err(ApiError::invalid(format!(
                "invalid type, expected struct {name}"
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = if inner.is_syntax() || inner.is_eof() {
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                )
            } else {
                let full = inner.to_string();
                let without_position = full
                    .rfind(" at line ")
                    .map_or(full.as_str(), |i| &full[..i]);
                let detail = redact_serde_message(without_position);
                if path == "." {
                    detail
                } else {
                    format!("{path}: {detail}")
                }
            };
            ApiError::invalid(msg)
        })?;
        de.end().map_err(|_| {
            ApiError::invalid("the body has trailing characters after the JSON value")
        })?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_serde_message;

    #[test]
    fn serde_messages_lose_the_offending_value() {
        assert_eq!(
            redact_serde_message("invalid type: string \"hunter2\", expected a boolean"),
            "invalid type, expected a boolean"
        );
        assert_eq!(
            redact_serde_message("invalid type: integer `12345678`, expected a string"),
            "invalid type, expected a string"
        );
        assert_eq!(
            redact_serde_message("missing field `email`"),
            "missing field `email`"
        );
        assert!(
            !redact_serde_message("unknown variant `s3cret`, expected one of `a`")
                .contains("s3cret")
        );
    }
}

/// The request context (client address) for unauthenticated routes.
#[derive(Debug)]
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(request_context(parts)))
    }
}
