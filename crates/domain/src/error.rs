//! The one error a domain parse can fail with.

/// Why a value was refused. The message names the rule, never echoes the input (it may be
/// a mistyped secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {problem}")]
pub struct ParseError {
    what: &'static str,
    problem: String,
}

impl ParseError {
    pub fn new(what: &'static str, problem: impl Into<String>) -> Self {
        Self {
            what,
            problem: problem.into(),
        }
    }

    /// The kind of value that was refused (`email`, `name`, ...).
    pub fn what(&self) -> &'static str {
        self.what
    }
}
