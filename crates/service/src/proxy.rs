//! The API proxy: forwards a caller's request to its connection's provider API with
//! the connection's token injected, and streams the answer back. The caller never sees
//! the token; only the provider's listed API base URLs are reachable.
//!
//! Order of checks, cheapest and most telling first: role, path rules, body size,
//! connection (scope, existence, re-authorisation, blocked app), base URL, the outbound
//! policy on the built URL. Only then is a token obtained (refreshed when due, through
//! the same coordination as the token call) and a connection opened.
//!
//! An upstream `401` causes one forced refresh and one retry, when the body can be
//! sent again: bodies up to `REPLAY_LIMIT` are buffered for that; larger ones stream
//! straight through and their `401` goes back to the caller.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokenwarden_domain::{ConnectionId, Role};
use tokenwarden_oauth::proxy::{
    check_proxy_path, forward_request_headers, forward_response_headers, proxy_target,
};
use tokenwarden_oauth::{HttpPolicy, OutboundClient, TransportError};
use tokenwarden_store::Actor;
use tracing::{info, warn};
use url::Url;

use crate::audit::{RequestContext, record};
use crate::connections::TokenOptions;
use crate::proxy_types::{
    BASE_URL_HEADER, BodyStream, BodyTooLarge, BoxError, ProxyError, ProxyRequest, ProxyResponse,
    ProxySettings, REPLAY_LIMIT,
};
use crate::token_set::TokenSet;
use crate::{Caller, ServiceError, ServiceResult, Services};

impl ProxySettings {
    /// The outbound client the proxy sends through.
    pub(crate) fn client(&self, allow_loopback: bool) -> ServiceResult<OutboundClient> {
        HttpPolicy {
            allow_loopback,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            resolver: self.resolver.clone(),
        }
        .build()
        .map_err(ServiceError::internal)
    }
}

/// `status:100` .. `status:999`, so that an audit outcome (a `&'static str`) can name
/// the exact upstream status.
static STATUS_OUTCOMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (100..1000).map(|code| format!("status:{code}")).collect());

fn status_outcome(status: StatusCode) -> &'static str {
    STATUS_OUTCOMES
        .get(usize::from(status.as_u16()).saturating_sub(100))
        .map_or("status:other", String::as_str)
}

fn error_outcome(e: &ServiceError) -> &'static str {
    match e {
        ServiceError::Proxy(p) => p.code(),
        ServiceError::InvalidRequest(_) => "invalid_request",
        ServiceError::Forbidden(_) => "forbidden",
        ServiceError::NotFound(_) => "not_found",
        ServiceError::Conflict(_) => "conflict",
        ServiceError::AppBlocked => "app_blocked",
        ServiceError::NeedsReauth => "needs_reauth",
        ServiceError::TokenExpired => "token_expired",
        ServiceError::ProviderUnavailable { .. } => "provider_unavailable",
        ServiceError::ProviderError(_) => "provider_error",
        ServiceError::Internal(_) => "internal_error",
        _ => "error",
    }
}

/// `<connection_id> <METHOD> <path>`: never the query (it may hold secrets), bounded so
/// that a hostile request cannot bloat the log.
fn audit_target(request: &ProxyRequest) -> String {
    let id: String = request.connection_id.chars().take(128).collect();
    let path: String = if request.path.is_empty() {
        "/".to_owned()
    } else {
        request.path.chars().take(512).collect()
    };
    format!("{id} {} {path}", request.method)
}

/// Counts the bytes of a stream and ends it with [`BodyTooLarge`] past `max`.
fn limited(inner: BodyStream, max: u64) -> BodyStream {
    Box::pin(inner.scan((0u64, false), move |(seen, failed), chunk| {
        let item = if *failed {
            None
        } else {
            match chunk {
                Err(e) => {
                    *failed = true;
                    Some(Err(e))
                }
                Ok(chunk) => {
                    *seen = seen.saturating_add(chunk.len() as u64);
                    if *seen > max {
                        *failed = true;
                        Some(Err(Box::new(BodyTooLarge(max)) as BoxError))
                    } else {
                        Some(Ok(chunk))
                    }
                }
            }
        };
        std::future::ready(item)
    }))
}

/// The caller's body: whole when small enough to send twice, else a one-shot stream.
enum Outgoing {
    Replayable(Bytes),
    Once(BodyStream),
}

async fn read_for_replay(mut body: BodyStream, max: u64) -> ServiceResult<Outgoing> {
    let keep = REPLAY_LIMIT.min(max);
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| {
            ServiceError::InvalidRequest("the request body could not be read".into())
        })?;
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > max {
            return Err(ServiceError::Proxy(ProxyError::RequestTooLarge(max)));
        }
        if buf.len() as u64 > keep {
            let head = stream::once(std::future::ready(Ok(buf.freeze())));
            return Ok(Outgoing::Once(limited(Box::pin(head.chain(body)), max)));
        }
    }
    Ok(Outgoing::Replayable(buf.freeze()))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The first listed base URL, or the one the caller names in [`BASE_URL_HEADER`]
/// (written as listed, with or without the trailing slash the listing adds).
fn choose_base<'a>(bases: &'a [Url], headers: &HeaderMap) -> ServiceResult<&'a Url> {
    let first = bases
        .first()
        .ok_or(ServiceError::Proxy(ProxyError::Unavailable))?;
    let mut named = headers.get_all(BASE_URL_HEADER).iter();
    let Some(value) = named.next() else {
        return Ok(first);
    };
    let refuse = || {
        ServiceError::InvalidRequest(format!(
            "{BASE_URL_HEADER} must be exactly one of the provider's api_base_urls"
        ))
    };
    if named.next().is_some() {
        return Err(refuse());
    }
    let value = value.to_str().map_err(|_| refuse())?;
    bases
        .iter()
        .find(|b| b.as_str() == value || b.as_str().strip_suffix('/') == Some(value))
        .ok_or_else(refuse)
}

/// `Authorization: <token_type> <access token>`, marked sensitive so that no HTTP
/// library logs or caches it.
fn authorization(set: &TokenSet) -> ServiceResult<HeaderValue> {
    let scheme = if set.token_type.eq_ignore_ascii_case("bearer") {
        "Bearer"
    } else {
        set.token_type.as_str()
    };
    let mut value =
        HeaderValue::from_str(&format!("{scheme} {}", set.access_token.expose_secret())).map_err(
            |_| {
                ServiceError::internal(std::io::Error::other(
                    "the stored access token cannot be sent in an HTTP header",
                ))
            },
        )?;
    value.set_sensitive(true);
    Ok(value)
}

fn transport_error(e: TransportError, max: u64) -> ServiceError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.downcast_ref::<BodyTooLarge>().is_some() {
            return ServiceError::Proxy(ProxyError::RequestTooLarge(max));
        }
        source = err.source();
    }
    let kind = match &e {
        TransportError::Policy(_) => ProxyError::Blocked,
        TransportError::Timeout(_) => ProxyError::Timeout,
        _ => ProxyError::Upstream,
    };
    warn!(error = %e, cause = ?std::error::Error::source(&e), "proxied request failed");
    ServiceError::Proxy(kind)
}

/// An upstream `401` forces at most one refresh per connection in this window: a proxy
/// key must not be able to make the server refresh (and the provider rotate) without
/// end.
pub const FORCED_REFRESH_INTERVAL_SECS: i64 = 30;

/// Whether a `401` may force a refresh now: not when the stored token was refreshed
/// (by anyone, on any replica) within [`FORCED_REFRESH_INTERVAL_SECS`].
fn forced_refresh_allowed(
    row: &tokenwarden_store::ConnectionForToken,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    row.connection.refreshed_at.is_none_or(|at| {
        now.signed_duration_since(at) >= chrono::Duration::seconds(FORCED_REFRESH_INTERVAL_SECS)
    })
}

impl Services {
    /// `/v1/proxy/{connection_id}/{path}`: one audit record per call, whatever the
    /// outcome.
    pub async fn proxy(
        &self,
        caller: &Caller,
        request: ProxyRequest,
        ctx: &RequestContext,
    ) -> ServiceResult<ProxyResponse> {
        let target = audit_target(&request);
        let result = self.forward(caller, request, ctx).await;
        let outcome = match &result {
            Ok(response) => status_outcome(response.status),
            Err(e) => error_outcome(e),
        };
        let audit = record(
            ctx,
            self.clock.now(),
            Some(&caller.vault_id),
            Actor::ApiKey(caller.key_id.clone()),
            "proxy.request",
            Some(target),
            outcome,
        );
        self.audit_batch.append(&self.store, audit).await?;
        result
    }

    async fn forward(
        &self,
        caller: &Caller,
        request: ProxyRequest,
        ctx: &RequestContext,
    ) -> ServiceResult<ProxyResponse> {
        caller.require_any(&[Role::Proxy, Role::Read])?;
        let id = ConnectionId::parse(&request.connection_id)
            .map_err(|_| ServiceError::NotFound("connection"))?;
        check_proxy_path(&request.path).map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let max = self.config.proxy.max_body_bytes;
        if declared_length(&request.headers).is_some_and(|len| len > max) {
            return Err(ServiceError::Proxy(ProxyError::RequestTooLarge(max)));
        }
        let (dek, row) = self.usable_connection(caller, &id).await?;
        let def =
            self.provider_definition(&row.app.provider_key, row.custom_provider_spec.as_deref())?;
        if def.api_base_urls().is_empty() {
            return Err(ServiceError::Proxy(ProxyError::Unavailable));
        }
        // The token goes wherever the definition says, so the definition must be the
        // one a key holder approved: the app's client secret is encrypted bound to a
        // digest of it, and a definition edited in the database does not open it.
        self.check_definition_approved(&dek, &row)?;
        let headers = forward_request_headers(&request.headers);
        let method = request.method;
        let body = read_for_replay(request.body, max).await?;
        let has_refresh = row.connection.has_refresh;
        let (vault_id, connection_id) =
            (row.connection.vault_id.clone(), row.connection.id.clone());
        let used_version = row.connection.version;
        let (set, _) = self
            .current_token_set(caller, &dek, row, TokenOptions::default(), ctx)
            .await?;
        // A templated provider's API lives on the connection's own host
        // (`https://{shop}.myshopify.com`): fill its parameters before choosing a base.
        let bases = def
            .api_base_urls_for(&set.params)
            .map_err(ServiceError::internal)?;
        let base = choose_base(&bases, &request.headers)?;
        let url = proxy_target(base, &request.path, request.query.as_deref())
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let http = &self.oauth.proxy_http;
        http.policy().check_url(&url).map_err(|e| {
            warn!(error = %e, connection.id = %id, "proxy target refused by the outbound policy");
            ServiceError::Proxy(ProxyError::Blocked)
        })?;
        let (first_body, replay) = match body {
            Outgoing::Replayable(bytes) => (reqwest::Body::from(bytes.clone()), Some(bytes)),
            Outgoing::Once(stream) => (reqwest::Body::wrap_stream(stream), None),
        };
        let send = |set: &TokenSet, body: reqwest::Body| {
            let mut headers = headers.clone();
            let auth = authorization(set);
            let builder = http.request(method.clone(), &url);
            async move {
                headers.insert(header::AUTHORIZATION, auth?);
                let builder = builder
                    .map_err(|_| ServiceError::Proxy(ProxyError::Blocked))?
                    .headers(headers)
                    .body(body);
                http.send_streaming(builder)
                    .await
                    .map_err(|e| transport_error(e, max))
            }
        };
        let mut response = send(&set, first_body).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && has_refresh
            && let Some(bytes) = replay
        {
            let row = self
                .store
                .connection_for_token(&vault_id, &connection_id)
                .await?
                .ok_or(ServiceError::NotFound("connection"))?;
            let retry_with = if row.connection.version != used_version {
                // Someone wrote a newer token since ours was read: try that one, no
                // refresh needed.
                Some(self.open_token_set(&dek, &row).await?)
            } else if forced_refresh_allowed(&row, self.clock.now()) {
                info!(connection.id = %connection_id, "upstream refused the token; refreshing once and retrying");
                Some(
                    self.refresh_coordinated(
                        crate::refresh_provider::KeyHolder::Key(caller),
                        &dek,
                        row,
                        true,
                        ctx,
                    )
                    .await?
                    .0,
                )
            } else {
                // A caller cannot force refreshes in a loop: the token was refreshed
                // moments ago, so the provider's 401 goes back as it is.
                info!(connection.id = %connection_id, "upstream refused a freshly refreshed token; not refreshing again");
                None
            };
            if let Some(set) = retry_with {
                drop(response);
                response = send(&set, reqwest::Body::from(bytes)).await?;
            }
        }
        if response.content_length().is_some_and(|len| len > max) {
            return Err(ServiceError::Proxy(ProxyError::ResponseTooLarge(max)));
        }
        let status = response.status();
        let headers = forward_response_headers(response.headers());
        let upstream: BodyStream =
            Box::pin(response.bytes_stream().map(|chunk| {
                chunk.map_err(|e| Box::new(TransportError::from_reqwest(e)) as BoxError)
            }));
        Ok(ProxyResponse {
            status,
            headers,
            body: limited(upstream, max),
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::Method;

    use super::*;

    fn stream_of(chunks: Vec<&'static [u8]>) -> BodyStream {
        Box::pin(stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    #[tokio::test]
    async fn a_limited_stream_ends_with_an_error_past_the_limit() {
        let mut s = limited(stream_of(vec![b"abc", b"def", b"gh", b"never"]), 7);
        assert_eq!(s.next().await.unwrap().unwrap(), "abc");
        assert_eq!(s.next().await.unwrap().unwrap(), "def");
        let err = s.next().await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<BodyTooLarge>().is_some());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn small_bodies_are_kept_for_a_retry_and_large_ones_stream_once() {
        let small = read_for_replay(stream_of(vec![b"hello", b" world"]), 100)
            .await
            .unwrap();
        assert!(matches!(small, Outgoing::Replayable(ref b) if b == "hello world"));
        let big = vec![0u8; (REPLAY_LIMIT + 1) as usize].leak();
        let large = read_for_replay(stream_of(vec![big, b"tail"]), REPLAY_LIMIT * 4)
            .await
            .unwrap();
        let Outgoing::Once(mut rest) = large else {
            panic!("a body over the replay limit is not buffered");
        };
        let mut total = 0;
        while let Some(chunk) = rest.next().await {
            total += chunk.unwrap().len();
        }
        assert_eq!(total as u64, REPLAY_LIMIT + 1 + 4);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_while_buffering() {
        let result = read_for_replay(stream_of(vec![b"0123456789"]), 5).await;
        assert!(matches!(
            result,
            Err(ServiceError::Proxy(ProxyError::RequestTooLarge(5)))
        ));
    }

    #[test]
    fn the_base_url_header_must_name_a_listed_base_exactly() {
        let bases = vec![
            Url::parse("https://api.example.com").unwrap(),
            Url::parse("https://uploads.example.com/v2").unwrap(),
        ];
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(BASE_URL_HEADER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(
            choose_base(&bases, &HeaderMap::new()).unwrap().as_str(),
            "https://api.example.com/"
        );
        for ok in [
            "https://uploads.example.com/v2",
            "https://api.example.com/",
            "https://api.example.com",
        ] {
            assert!(choose_base(&bases, &with(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "https://uploads.example.com/v2/",
            "https://UPLOADS.example.com/v2",
            "https://evil.test",
            "https://2130706433/",
            "",
        ] {
            assert!(
                matches!(
                    choose_base(&bases, &with(bad)),
                    Err(ServiceError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            choose_base(&[], &HeaderMap::new()),
            Err(ServiceError::Proxy(ProxyError::Unavailable))
        ));
    }

    #[test]
    fn audit_outcomes_name_the_exact_status_and_targets_omit_the_query() {
        assert_eq!(status_outcome(StatusCode::OK), "status:200");
        assert_eq!(status_outcome(StatusCode::UNAUTHORIZED), "status:401");
        assert_eq!(
            status_outcome(StatusCode::from_u16(599).unwrap()),
            "status:599"
        );
        let request = ProxyRequest {
            connection_id: "alice".into(),
            method: Method::PATCH,
            path: "/user/repos".into(),
            query: Some("access_token=secret".into()),
            headers: HeaderMap::new(),
            body: stream_of(vec![]),
        };
        assert_eq!(audit_target(&request), "alice PATCH /user/repos");
    }
}
