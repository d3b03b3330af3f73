//! What a token call answers: the issued tokens in the shape the settings ask for
//! (JSON, form-encoded, a persona's nesting and extra fields), or an injected fault.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::behaviour::{ExpiresIn, FaultKind, Quirks};
use crate::routes::oauth_error::{OAuthError, form_response, no_store};
use crate::state::{Settings, Shared};

/// What a successful token call returns.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_in: i64,
    pub(crate) scope: String,
    pub(crate) id_token: Option<String>,
}

pub(crate) fn render_tokens(issued: Issued, settings: &Settings, code_exchange: bool) -> Response {
    let quirks = &settings.quirks;
    let mut fields: Vec<(&str, Value)> = vec![
        ("access_token", Value::String(issued.access_token)),
        ("token_type", Value::String("Bearer".to_owned())),
    ];
    match quirks.expires_in {
        ExpiresIn::Number => fields.push(("expires_in", Value::from(issued.expires_in))),
        ExpiresIn::String => {
            fields.push(("expires_in", Value::String(issued.expires_in.to_string())))
        }
        ExpiresIn::Omitted => {}
    }
    if let Some(rt) = issued.refresh_token {
        fields.push(("refresh_token", Value::String(rt)));
    }
    if !issued.scope.is_empty() {
        fields.push(("scope", Value::String(issued.scope)));
    }
    if let Some(id_token) = issued.id_token {
        fields.push(("id_token", Value::String(id_token)));
    }
    if let Some(persona) = &settings.persona {
        let tokens: Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut body = persona.extra_response_fields.clone();
        match persona.nest_tokens_under.as_ref().filter(|_| code_exchange) {
            Some(under) => {
                let mut nested = match body.remove(under) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                nested.extend(tokens);
                body.insert(under.clone(), Value::Object(nested));
            }
            None => body.extend(tokens),
        }
        return no_store((StatusCode::OK, Json(Value::Object(body))).into_response());
    }
    let response = if quirks.form_encoded_token_response {
        let pairs: Vec<(&str, String)> = fields
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        form_response(StatusCode::OK, &pairs)
    } else {
        let map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        (StatusCode::OK, Json(Value::Object(map))).into_response()
    };
    no_store(response)
}

pub(crate) async fn fault_response(shared: &Shared, kind: FaultKind, quirks: &Quirks) -> Response {
    match kind {
        FaultKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "server_error" })),
        )
            .into_response(),
        FaultKind::ServiceUnavailable | FaultKind::ServiceUnavailableAfterProcessing => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "temporarily_unavailable" })),
        )
            .into_response(),
        FaultKind::TooManyRequests { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_secs.to_string())],
            Json(
                json!({ "error": "temporarily_unavailable", "error_description": "rate limited" }),
            ),
        )
            .into_response(),
        FaultKind::InvalidGrant => {
            OAuthError::invalid_grant("injected fault: the grant is invalid").render(quirks)
        }
        FaultKind::GarbageBody => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>Service temporarily overloaded</h1><p>upstream said: \u{1f4a5}</p>",
        )
            .into_response(),
        FaultKind::Hang | FaultKind::HangAfterProcessing => {
            let mut released = shared.shutdown.subscribe();
            tokio::select! {
                () = tokio::time::sleep(shared.hang_duration) => {}
                _ = released.wait_for(|down| *down) => {}
            }
            (
                StatusCode::GATEWAY_TIMEOUT,
                Json(json!({ "error": "temporarily_unavailable" })),
            )
                .into_response()
        }
    }
}
