//! Store failures.

/// What went wrong in the store. Backend errors keep their cause for the log; the HTTP
/// layer never shows it to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the payload names the rule (`email`, ...).
    #[error("conflict: {0} already exists")]
    Conflict(&'static str),
    /// A row refers to another that does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A stored value could not be read back (corruption or tampering).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
