//! Names chosen by callers: app keys, connection ids, OAuth scopes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A vault's name for an OAuth app (`github`, `google-workspace`): the same shape as a
/// provider key, `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey(String);

impl AppKey {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut bytes = s.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok =
            bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if first_ok && rest_ok && s.len() <= 63 {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "app key",
                "must be 1 to 63 lowercase letters, digits, - or _, starting with a letter or digit",
            ))
        }
    }
}

string_newtype!(AppKey);

impl utoipa::PartialSchema for AppKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9][a-z0-9_-]{0,62}$"))
            .examples(["github"])
            .into()
    }
}

impl utoipa::ToSchema for AppKey {}

/// The caller's name for a connection (often its own user id): 1 to 128 characters
/// from `A-Z a-z 0-9 . _ ~ - : @ +`, so it can stand in a URL path unescaped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-:@+".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "connection id",
                "must be 1 to 128 characters from A-Z a-z 0-9 . _ ~ - : @ +",
            ))
        }
    }

    /// A fresh random id, for connections whose caller named none.
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let suffix: String = (0..20)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        Self(format!("conn_{suffix}"))
    }
}

string_newtype!(ConnectionId);

impl utoipa::PartialSchema for ConnectionId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9._~:@+-]{1,128}$"))
            .examples(["user-42"])
            .into()
    }
}

impl utoipa::ToSchema for ConnectionId {}

/// OAuth scopes (RFC 6749 §3.3 `scope-token`s), at most 100 of 1 to 256 characters,
/// duplicates removed, order kept.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub const MAX: usize = 100;

    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ParseError> {
        if items.len() > Self::MAX {
            return Err(ParseError::new("scopes", "must be at most 100"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let s = item.as_ref();
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            let ok = !s.is_empty()
                && s.len() <= 256
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !ok {
                return Err(ParseError::new(
                    "scopes",
                    "each scope must be 1 to 256 printable ASCII characters without spaces, quotes or backslashes (RFC 6749 §3.3)",
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        Ok(Self(out))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Self::parse(&items).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Scopes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(256))
                    .pattern(Some("^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$")),
            )
            .max_items(Some(Self::MAX))
            .into()
    }
}

impl utoipa::ToSchema for Scopes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_keys_and_connection_ids_are_url_safe() {
        assert!(AppKey::parse("github").is_ok());
        assert!(AppKey::parse("google_workspace-2").is_ok());
        for bad in ["", "-x", "GitHub", "a b", "a/b", &"a".repeat(64)] {
            assert!(AppKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ConnectionId::parse("user-42@example.com").is_ok());
        for bad in ["", "a/b", "a b", "..%2f", "a?b", &"a".repeat(129)] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_follow_rfc_6749_and_lose_duplicates() {
        let s = Scopes::parse(&[
            "repo",
            "read:user",
            "repo",
            "https://www.googleapis.com/auth/drive",
        ])
        .unwrap();
        assert_eq!(s.as_slice().len(), 3);
        assert!(Scopes::parse(&["a b"]).is_err());
        assert!(Scopes::parse(&[""]).is_err());
        assert!(Scopes::parse(&["a\"b"]).is_err());
    }
}
