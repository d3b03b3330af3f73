//! Account passwords, as typed by a person.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::ParseError;

/// A password: at least 8 characters (NIST SP 800-63B), at most 1024 bytes so that a
/// hostile body cannot make the KDF hash megabytes. Redacted in `Debug`, zeroized on drop,
/// not `Clone`.
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(s: String) -> Result<Self, ParseError> {
        let secret = SecretString::from(s);
        let s = secret.expose_secret();
        if s.chars().count() < Self::MIN_CHARS {
            return Err(ParseError::new("password", "must be at least 8 characters"));
        }
        if s.len() > Self::MAX_BYTES {
            return Err(ParseError::new("password", "must be at most 1024 bytes"));
        }
        Ok(Self(secret))
    }

    /// A password presented at login: only the length bound applies (the rules of the
    /// day may be stricter than when the account was made).
    pub fn parse_login(s: String) -> Result<Self, ParseError> {
        if s.len() > Self::MAX_BYTES {
            return Err(ParseError::new("password", "must be at most 1024 bytes"));
        }
        Ok(Self(SecretString::from(s)))
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Deserializes with the rules for a new password. The error names the rule only.
impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Password,
            )))
            .min_length(Some(Self::MIN_CHARS))
            // The rule counts bytes, which JSON Schema cannot; this bound is exact for
            // ASCII and the server refuses anything past 1024 bytes.
            .max_length(Some(Self::MAX_BYTES))
            .into()
    }
}

impl utoipa::ToSchema for Password {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_print_the_password() {
        let p = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
    }
}
