//! Errors of starting or configuring the fake provider.

/// Why the fake provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind the fake provider's listener: {0}")]
    Bind(#[source] std::io::Error),
    #[error("invalid base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("cannot load the fake signing key: {0}")]
    SigningKey(#[source] jsonwebtoken::errors::Error),
}
