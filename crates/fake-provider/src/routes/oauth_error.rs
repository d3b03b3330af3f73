//! OAuth error responses of the token and revocation endpoints (RFC 6749 §5.2).

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::behaviour::Quirks;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    /// A code of RFC 6749 §5.2, or free text under [`crate::EchoSecrets::AsErrorCode`].
    pub error: Cow<'static, str>,
    pub description: String,
    /// Add `WWW-Authenticate: Basic` (a failed `client_secret_basic`).
    pub basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error: Cow::Borrowed(error),
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_client(description: impl Into<String>, basic_challenge: bool) -> Self {
        Self {
            basic_challenge,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub(crate) fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub(crate) fn server_error(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            description,
        )
    }

    /// Renders the error, honouring the form-encoding and HTTP-200 quirks.
    pub(crate) fn render(self, quirks: &Quirks) -> Response {
        let status = if quirks.errors_with_200 {
            StatusCode::OK
        } else {
            self.status
        };
        let pairs = [
            ("error", self.error.into_owned()),
            ("error_description", self.description),
        ];
        let mut response = if quirks.form_encoded_token_response {
            form_response(status, &pairs)
        } else {
            let body = serde_json::json!({ "error": pairs[0].1, "error_description": pairs[1].1 });
            (status, axum::Json(body)).into_response()
        };
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"fake-provider\""),
            );
        }
        no_store(response)
    }
}

/// A form-urlencoded response body.
pub(crate) fn form_response(status: StatusCode, pairs: &[(&str, String)]) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    (
        status,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
