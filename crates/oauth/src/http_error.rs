//! The failures of outbound calls: what the policy refuses ([`PolicyError`]), what
//! goes wrong in transport ([`TransportError`]) and a failed JSON GET ([`FetchError`]).

use reqwest::StatusCode;

use crate::http_resolver::find_blocked_host;

/// A URL or address the policy refuses. Names the host, never the path or query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Only `https` is allowed (plus `http` with `allow_loopback`).
    #[error("URL scheme `{0}` is not allowed; use https")]
    Scheme(String),
    /// The URL has no host.
    #[error("URL has no host")]
    NoHost,
    /// `user:password@` in a provider URL would be sent as Basic credentials.
    #[error("URL must not contain credentials")]
    Credentials,
    /// The host is, or resolves to, a loopback, private or otherwise non-global address.
    #[error("host `{0}` is not a public address")]
    BlockedAddress(String),
}

/// A failed outbound call, before any provider semantics.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The policy refused the URL or the address it resolved to.
    #[error("outbound request refused: {0}")]
    Policy(#[from] PolicyError),
    /// Connect or total timeout.
    #[error("request to the provider timed out")]
    Timeout(#[source] reqwest::Error),
    /// DNS failure, refused connection, TLS failure.
    #[error("could not connect to the provider")]
    Connect(#[source] reqwest::Error),
    /// The body exceeded `HttpPolicy::max_body_bytes`.
    #[error("response body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// Anything else reqwest reports.
    #[error("HTTP request to the provider failed")]
    Other(#[source] reqwest::Error),
}

impl TransportError {
    /// Worth retrying: the request may never have reached the provider, or it was slow.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connect(_))
    }

    /// Sorts a reqwest error; the URL is dropped so that no query string reaches a log.
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        if let Some(blocked) = find_blocked_host(&err) {
            return Self::Policy(PolicyError::BlockedAddress(blocked));
        }
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout(err)
        } else if err.is_connect() {
            Self::Connect(err)
        } else {
            Self::Other(err)
        }
    }
}

/// A failed GET of a JSON document (discovery, JWKS, userinfo).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed or was refused by the policy.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A status other than 200. Redirects land here too: none is followed.
    #[error("the provider answered HTTP {0}")]
    Status(StatusCode),
    /// The body is not a JSON object.
    #[error("the provider's answer is not a JSON object (content type {})", content_type.as_deref().unwrap_or("none"))]
    Malformed {
        /// The `Content-Type` header.
        content_type: Option<String>,
    },
}

impl From<PolicyError> for FetchError {
    fn from(err: PolicyError) -> Self {
        Self::Transport(TransportError::Policy(err))
    }
}
