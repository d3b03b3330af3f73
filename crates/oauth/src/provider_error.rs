//! The errors of provider definitions: a definition that does not hold together
//! ([`DefinitionError`]) and connect-session parameters that do not fit one
//! ([`ParamError`]). Their own file because the definition checks and the quirk checks
//! both produce them.

/// A definition that does not hold together, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// One field is wrong.
    #[error("provider field `{field}` {problem}")]
    Field {
        /// The field's name as written in the spec.
        field: &'static str,
        /// What is wrong, as a sentence fragment.
        problem: String,
    },
    /// The TOML or JSON text could not be read as a spec.
    #[error("provider definition could not be read: {0}")]
    Syntax(String),
}

impl DefinitionError {
    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Field {
            field,
            problem: problem.into(),
        }
    }

    /// The field at fault, when it is one field.
    pub fn field_name(&self) -> Option<&'static str> {
        match self {
            Self::Field { field, .. } => Some(field),
            Self::Syntax(_) => None,
        }
    }
}

/// A TOML error as one line: the parser's message and where it points. Some messages
/// are empty (a control character in a comment), which alone would tell an operator
/// nothing.
pub(crate) fn toml_problem(err: &toml::de::Error, text: &str) -> String {
    let message = match err.message().trim() {
        "" => "is not valid TOML",
        m => m,
    };
    let before = err.span().and_then(|span| text.get(..span.start));
    match before {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_owned(),
    }
}

/// Connect-session parameters that are wrong for a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("params.{0} is required by this provider")]
    Missing(String),
    #[error("params.{0} is not used by this provider")]
    Unexpected(String),
    #[error("params.{name} must be {rule}")]
    Invalid { name: String, rule: &'static str },
    #[error("the parameters do not make a usable URL")]
    Unusable,
}
