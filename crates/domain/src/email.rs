//! Account email addresses.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// An email address, trimmed and lower-cased so that one mailbox is one account.
/// Only the shape is checked (one `@`, non-empty parts, a dotless domain allowed for
/// intranet hosts); deliverability is not this type's business.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::new("email", "must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::new("email", "must be at most 254 bytes"));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ParseError::new(
                "email",
                "must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(ParseError::new("email", "must contain @"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(ParseError::new(
                "email",
                "must have one @ between a local part and a domain",
            ));
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(ParseError::new("email", "has a malformed domain"));
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Email,
            )))
            .max_length(Some(Self::MAX_LEN))
            .examples(["alice@example.com"])
            .into()
    }
}

impl utoipa::ToSchema for Email {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        assert!(Email::parse("ops@localhost").is_ok());
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "a b@c.d",
            "a@.c",
            "a@c..d",
            "a\u{7}@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
