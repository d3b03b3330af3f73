//! What the API proxy takes and answers: its settings, request, response and errors.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokenwarden_oauth::HostResolver;

/// Header choosing one of the provider's API base URLs (exact match) instead of the
/// first.
pub const BASE_URL_HEADER: &str = "x-tokenwarden-base-url";

/// Request bodies up to this size are kept so that they can be sent again after a
/// refresh; larger ones are streamed once.
pub const REPLAY_LIMIT: u64 = 1024 * 1024;

/// An error inside a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Limits and outbound settings of the proxy (`TOKENWARDEN_PROXY_*`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Largest request body accepted and largest response body passed on.
    pub max_body_bytes: u64,
    /// Time allowed to connect to the provider's API (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for a whole upstream exchange, both bodies included.
    pub timeout: Duration,
    /// Where the proxy looks up host names; `None` is the system resolver. Tests
    /// inject one. Answers are checked against the outbound policy either way.
    pub resolver: Option<Arc<dyn HostResolver>>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            resolver: None,
        }
    }
}

/// A request to forward, as it arrived.
pub struct ProxyRequest {
    /// The `{connection_id}` segment, as sent.
    pub connection_id: String,
    pub method: Method,
    /// What follows `/v1/proxy/{connection_id}` in the request line, undecoded.
    pub path: String,
    /// The query string, undecoded.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

/// Header values and body stay out of `Debug`: they carry the caller's credentials.
impl fmt::Debug for ProxyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRequest")
            .field("connection_id", &self.connection_id)
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The provider's answer: status, filtered headers, and a body that ends with an error
/// if it passes the size limit or the time limit.
pub struct ProxyResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

impl fmt::Debug for ProxyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why a proxied request got no answer from the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The provider definition lists no API base URL.
    #[error("the connection's provider has no API base URL, so it cannot be proxied to")]
    Unavailable,
    /// The outbound policy refused the address (non-global, or a name resolving to one).
    #[error("the provider's API address is not a public address")]
    Blocked,
    /// Connect or total timeout before the provider answered.
    #[error("the provider's API did not answer in time")]
    Timeout,
    /// Connection refused, DNS failure, TLS failure, broken exchange.
    #[error("the provider's API could not be reached")]
    Upstream,
    /// The request body is larger than the limit.
    #[error("the request body exceeds {0} bytes")]
    RequestTooLarge(u64),
    /// The provider announced a body larger than the limit.
    #[error("the provider's answer exceeds {0} bytes")]
    ResponseTooLarge(u64),
}

impl ProxyError {
    /// The stable word used as problem `code`, audit outcome and metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable => "proxy_unavailable",
            Self::Blocked => "upstream_blocked",
            Self::Timeout => "upstream_timeout",
            Self::Upstream => "upstream_error",
            Self::RequestTooLarge(_) => "payload_too_large",
            Self::ResponseTooLarge(_) => "response_too_large",
        }
    }
}

/// Raised inside a body stream that passes the size limit; recognised again in the
/// error chain of a failed upstream request.
#[derive(Debug, thiserror::Error)]
#[error("the body exceeds {0} bytes")]
pub struct BodyTooLarge(pub u64);
