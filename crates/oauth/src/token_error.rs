//! The errors of token, refresh and revocation requests: [`TokenError`] and the
//! provider's own RFC 6749 §5.2 [`ProviderError`].

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::http::{PolicyError, TransportError};

/// An error response from the provider, as RFC 6749 §5.2 structures it.
///
/// `Display` shows only the `error` code: the description is free text from the
/// provider and is kept for logs and developers, not for echoing to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The error code (`invalid_grant`, `invalid_client`, ...), limited to the RFC's
    /// character set and 64 characters.
    pub error: String,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.error)
    }
}

/// A failed token, refresh or revocation request.
///
/// Nothing here holds a token, code or secret, and no variant keeps the response body.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant` (RFC 6749 §5.2): the code or refresh token is no longer good. The
    /// connection needs the user again; retrying will not help.
    #[error("the provider refused the grant: {0}")]
    InvalidGrant(ProviderError),
    /// Any other provider error (`invalid_client`, `invalid_scope`, ...).
    #[error("the provider refused the request: {0}")]
    Provider(ProviderError),
    /// Worth retrying later: 5xx, 429, `temporarily_unavailable`, timeouts, failed
    /// connections.
    #[error("transient failure at the provider{}", status_suffix(*.status))]
    Transient {
        /// The HTTP status, when a response arrived.
        status: Option<StatusCode>,
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The transport failure, when no response arrived.
        #[source]
        source: Option<TransportError>,
    },
    /// A response that is neither a token nor an error. The body is not kept: it may
    /// hold a token.
    #[error("unexpected response from the provider (HTTP {status}, content type {})", content_type.as_deref().unwrap_or("none"))]
    Malformed {
        /// The HTTP status.
        status: StatusCode,
        /// The `Content-Type` header.
        content_type: Option<String>,
    },
    /// The request could not be made: refused by the outbound policy, response too
    /// large, or another non-transient transport failure.
    #[error(transparent)]
    Transport(TransportError),
}

fn status_suffix(status: Option<StatusCode>) -> String {
    status
        .map(|s| format!(" (HTTP {})", s.as_u16()))
        .unwrap_or_default()
}

impl TokenError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Whether the request provably never reached the provider: refused by the outbound
    /// policy, or the connection failed before a byte of it was sent (DNS, a refused or
    /// reset connect, the TLS handshake, the connect timeout). Then repeating it cannot
    /// make the provider see it twice. A timeout after connecting, a connection lost
    /// during the exchange, and any HTTP answer (5xx and 429 included) are not: the
    /// provider may have acted on the request.
    pub fn never_sent(&self) -> bool {
        match self {
            Self::Transient {
                status: None,
                source: Some(source),
                ..
            }
            | Self::Transport(source) => match source {
                TransportError::Policy(_) | TransportError::Connect(_) => true,
                // A connect timeout is both; a timeout waiting for the answer is not.
                TransportError::Timeout(e) => e.is_connect(),
                TransportError::BodyTooLarge(_) | TransportError::Other(_) => false,
            },
            _ => false,
        }
    }

    /// The provider's `Retry-After`, when it sent one with a transient error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The structured provider error, when there is one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::InvalidGrant(e) | Self::Provider(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn with_retry_after(self, value: Option<Duration>) -> Self {
        match self {
            Self::Transient {
                status,
                retry_after: None,
                source,
            } => Self::Transient {
                status,
                retry_after: value,
                source,
            },
            other => other,
        }
    }
}

impl From<TransportError> for TokenError {
    fn from(err: TransportError) -> Self {
        if err.is_transient() {
            Self::Transient {
                status: None,
                retry_after: None,
                source: Some(err),
            }
        } else {
            Self::Transport(err)
        }
    }
}

impl From<PolicyError> for TokenError {
    fn from(err: PolicyError) -> Self {
        Self::Transport(TransportError::Policy(err))
    }
}
