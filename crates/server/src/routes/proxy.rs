//! `/v1/proxy/{connection_id}/{path}`: the API proxy. The path is read from the raw
//! request line, never from axum's decoded parameters, so that the rules in
//! `tokenwarden_oauth::proxy` judge exactly what the provider would receive.

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokenwarden_service::{BodyTooLarge, BoxError, ProxyRequest};
use tracing::warn;

use crate::error::{ApiError, Problem};
use crate::extract::ApiKeyAuth;
use crate::pages;
use crate::state::AppState;

const PREFIX: &str = "/v1/proxy/";

/// `(connection id segment, rest of the path)`, both undecoded.
fn split(raw_path: &str) -> Option<(&str, &str)> {
    let rest = raw_path.strip_prefix(PREFIX)?;
    let (id, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    (!id.is_empty()).then_some((id, path))
}

/// A status as a metric label: its class, so the label set stays small.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The provider's answer is served from tokenwarden's origin and was fetched with a
/// connection's token. No cache may keep it, whatever the provider said: a shared cache
/// between the caller and tokenwarden could hand it to someone without a key (RFC 9111
/// §3.5 lets `public`, `s-maxage` or `must-revalidate` lift the protection of an
/// authorised request), so the provider's `Cache-Control` is replaced; its validators
/// (`ETag`, `Last-Modified`) pass on, so callers can still revalidate. And no browser
/// may run it as a page of this origin: the provider's CSP, written for its own origin,
/// is replaced by one that loads and runs nothing.
fn harden(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(pages::API_CSP),
    );
}

/// Forward a request to the connection's provider API with its token (role `proxy` or
/// `read`). The path and query string are appended to the provider's first API base
/// URL, or to the one named in `X-Tokenwarden-Base-Url`. The caller's
/// `Authorization`, cookies, `Host`, hop-by-hop and `X-Forwarded-*` headers are
/// dropped; the provider's status, headers (without hop-by-hop headers and
/// `Set-Cookie`) and body come back as they are, redirects included (never followed),
/// except that `Cache-Control` is always `no-store` and the CSP forbids running the body
/// as a page.
/// Bodies are limited to 10 MiB by default: a larger request gets 413; a larger
/// response announced by `Content-Length` gets 502 `response_too_large`, and one that
/// grows past the limit while streaming is cut off (the connection closes before the
/// body is complete).
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/v1/proxy/{connection_id}/{path}",
    tag = "proxy",
    security(("api_key" = [])),
    params(
        ("connection_id" = String, Path),
        ("path" = String, Path, description = "Appended to the API base URL; `.`/`..` segments, encoded dots, slashes and backslashes, `//` and control characters are refused"),
        ("X-Tokenwarden-Base-Url" = Option<String>, Header, description = "One of the provider's api_base_urls, exactly as listed"),
    ),
    responses(
        (status = 200, description = "The provider's answer, whatever its status, passed on as it is"),
        (status = 400, description = "invalid_request: a refused path or base URL", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden (role or scope), or upstream_blocked (the API address is not public)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "needs_reauth, token_expired, app_blocked or proxy_unavailable (no API base URL)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "upstream_error or response_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "upstream_timeout", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn proxy(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((connection_id, path)) = split(uri.path()) else {
        return ApiError::not_found("connection").into_response();
    };
    let request = ProxyRequest {
        connection_id: connection_id.to_owned(),
        method,
        path: path.to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: Box::pin(
            body.into_data_stream()
                .map(|chunk| chunk.map_err(|e| Box::new(e) as BoxError)),
        ),
    };
    match state.services.proxy(&caller, request, &ctx).await {
        Ok(answer) => {
            state.metrics.proxy_outcome(status_class(answer.status));
            let metrics = state.metrics.clone();
            let body = answer.body.inspect(move |chunk| {
                if let Err(e) = chunk {
                    if e.downcast_ref::<BodyTooLarge>().is_some() {
                        metrics.proxy_truncated();
                    }
                    warn!(error = %e, "proxied response cut off");
                }
            });
            let mut response = Response::new(Body::from_stream(body));
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            harden(response.headers_mut());
            response
        }
        Err(e) => {
            let error = ApiError::from(e);
            state.metrics.proxy_outcome(error.code());
            error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn the_raw_path_splits_into_connection_and_rest() {
        assert_eq!(
            split("/v1/proxy/alice/user/repos"),
            Some(("alice", "/user/repos"))
        );
        assert_eq!(split("/v1/proxy/alice/"), Some(("alice", "/")));
        assert_eq!(split("/v1/proxy/alice"), Some(("alice", "")));
        assert_eq!(
            split("/v1/proxy/alice/%2e%2e/x"),
            Some(("alice", "/%2e%2e/x"))
        );
        assert_eq!(split("/v1/proxy//x"), None);
        assert_eq!(split("/v1/other/alice"), None);
    }
}
