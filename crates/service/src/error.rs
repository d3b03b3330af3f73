//! What the service layer can answer besides success. The HTTP layer maps each variant
//! to one status and one stable `code`.

use tokenwarden_domain::ParseError;
use tokenwarden_store::StoreError;

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; the message says exactly what (never echoing a secret).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing, malformed, unknown, revoked or expired credentials: one answer for all.
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated, but the role or scope does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (or not visible to this caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed logins")]
    RateLimited { retry_after_secs: u64 },
    /// Account creation is closed on this server.
    #[error("signup is closed on this server")]
    SignupClosed,
    /// A managed vault was asked for but the server has no master key.
    #[error(
        "managed vaults need a server master key (TOKENWARDEN_MASTER_KEY or TOKENWARDEN_MASTER_KEY_FILE)"
    )]
    ManagedUnavailable,
    /// The app is blocked: no new connects, no refreshes.
    #[error("the app is blocked")]
    AppBlocked,
    /// The provider refused the refresh token: someone must connect again.
    #[error("the connection needs to be authorised again")]
    NeedsReauth,
    /// The access token has expired and there is no refresh token.
    #[error("the access token has expired and there is no refresh token")]
    TokenExpired,
    /// The provider failed or refused in a way a retry may fix (5xx, 429, timeouts).
    #[error("the provider is unavailable")]
    ProviderUnavailable { retry_after_secs: Option<u64> },
    /// The provider answered with an error or something unreadable.
    #[error("the provider refused the request ({0})")]
    ProviderError(String),
    /// Revocation at the provider failed; the connection was kept.
    #[error("revocation failed at the provider")]
    RevocationFailed,
    /// The API proxy could not get an answer from the provider's API.
    #[error(transparent)]
    Proxy(#[from] crate::proxy_types::ProxyError),
    /// Anything else: logged once where it is turned into a 500, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    pub fn invalid(e: ParseError) -> Self {
        Self::InvalidRequest(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ServiceError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            other => ServiceError::internal(other),
        }
    }
}

impl From<tokenwarden_crypto::CryptoError> for ServiceError {
    fn from(e: tokenwarden_crypto::CryptoError) -> Self {
        ServiceError::internal(e)
    }
}
