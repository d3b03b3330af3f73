//! Key scopes: which apps and connections a key may touch.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// A pattern over app keys or connection ids where `*` matches any run of characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Glob(String);

impl Glob {
    pub const MAX_LEN: usize = 200;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ParseError::new(
                "scope pattern",
                "must be 1 to 200 bytes long",
            ));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ParseError::new(
                "scope pattern",
                "must not contain spaces or control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` matches; `*` is the only wildcard.
    pub fn matches(&self, candidate: &str) -> bool {
        let mut parts = self.0.split('*');
        let Some(first) = parts.next() else {
            return false;
        };
        let Some(mut rest) = candidate.strip_prefix(first) else {
            return false;
        };
        let tail: Vec<&str> = parts.collect();
        let Some((last, middle)) = tail.split_last() else {
            // No `*` at all: the whole candidate must equal the pattern.
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// 1 to 200 characters (the rule counts bytes, which JSON Schema cannot), none of them a
/// control character or whitespace: Rust's `char::is_control` and `char::is_whitespace`
/// spelled out, since ECMA-262's `\s` is another set.
impl utoipa::PartialSchema for Glob {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(Self::MAX_LEN))
            .pattern(Some(
                "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+$",
            ))
            .examples(["team-*"])
            .into()
    }
}

impl utoipa::ToSchema for Glob {}

/// Limits a key to some apps and/or connection ids. An absent list means no limit; a
/// present one must name at least one pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// Read by utoipa (`additionalProperties: false`); the hand-written `Deserialize` below
// refuses unknown fields itself.
#[serde(deny_unknown_fields)]
pub struct KeyScope {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Glob>>, min_items = 1, max_items = 100)]
    pub apps: Option<Vec<Glob>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Glob>>, min_items = 1, max_items = 100)]
    pub connections: Option<Vec<Glob>>,
}

/// Written by hand because serde's derived impl would also read a struct from a JSON
/// array (fields in order); a scope is an object and nothing else.
impl<'de> Deserialize<'de> for KeyScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Apps,
            Connections,
        }

        struct PatternList(Option<Vec<Glob>>);

        impl<'de> Deserialize<'de> for PatternList {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                patterns(d).map(PatternList)
            }
        }

        struct ScopeVisitor;

        impl<'de> serde::de::Visitor<'de> for ScopeVisitor {
            type Value = KeyScope;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct KeyScope")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyScope, A::Error> {
                let mut scope = KeyScope::default();
                let (mut seen_apps, mut seen_connections) = (false, false);
                while let Some(field) = map.next_key::<Field>()? {
                    let (seen, slot) = match field {
                        Field::Apps => (&mut seen_apps, &mut scope.apps),
                        Field::Connections => (&mut seen_connections, &mut scope.connections),
                    };
                    if *seen {
                        return Err(serde::de::Error::custom("duplicate field"));
                    }
                    *seen = true;
                    *slot = map.next_value::<PatternList>()?.0;
                }
                Ok(scope)
            }
        }

        d.deserialize_map(ScopeVisitor)
    }
}

const MAX_PATTERNS: usize = 100;

fn patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Glob>>, D::Error> {
    let Some(list) = Option::<Vec<Glob>>::deserialize(d)? else {
        return Ok(None);
    };
    if list.is_empty() || list.len() > MAX_PATTERNS {
        return Err(serde::de::Error::custom(
            "a scope list must hold 1 to 100 patterns (omit it for no limit)",
        ));
    }
    Ok(Some(list))
}

impl KeyScope {
    pub fn is_unlimited(&self) -> bool {
        self.apps.is_none() && self.connections.is_none()
    }

    pub fn allows_app(&self, app: &str) -> bool {
        self.apps
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.matches(app)))
    }

    /// Whether every app and connection `narrower` allows is also allowed by `self`, so
    /// a key with this scope may create a key with that one. Sound because a pattern's
    /// `*` can only be consumed by a `*` of a covering pattern (literal parts contain no
    /// `*`), so whatever it expands to is absorbed there too.
    pub fn covers(&self, narrower: &KeyScope) -> bool {
        fn list_covers(wide: &Option<Vec<Glob>>, narrow: &Option<Vec<Glob>>) -> bool {
            match (wide, narrow) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(wide), Some(narrow)) => narrow
                    .iter()
                    .all(|n| wide.iter().any(|w| w.matches(n.as_str()))),
            }
        }
        list_covers(&self.apps, &narrower.apps)
            && list_covers(&self.connections, &narrower.connections)
    }

    pub fn allows_connection(&self, connection: &str) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.matches(connection)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Glob {
        Glob::parse(s).unwrap()
    }

    #[test]
    fn globs_match_like_shell_stars() {
        assert!(g("team-*").matches("team-a"));
        assert!(g("team-*").matches("team-"));
        assert!(!g("team-*").matches("tea"));
        assert!(g("github").matches("github"));
        assert!(!g("github").matches("github2"));
        assert!(g("*").matches(""));
        assert!(g("a*b*c").matches("a-x-b-y-c"));
        assert!(!g("a*b*c").matches("a-x-c"));
        assert!(g("*ab").matches("ab"));
        assert!(!g("a*a").matches("a"));
    }

    #[test]
    fn a_scope_covers_only_what_is_narrower() {
        let scope = |json: &str| serde_json::from_str::<KeyScope>(json).unwrap();
        let wide = scope(r#"{"apps": ["git*"], "connections": ["team-*"]}"#);
        assert!(wide.covers(&scope(
            r#"{"apps": ["github"], "connections": ["team-a*"]}"#
        )));
        assert!(wide.covers(&wide));
        assert!(!wide.covers(&scope(r#"{"apps": ["github"]}"#)));
        assert!(!wide.covers(&scope(r#"{"apps": ["*"], "connections": ["team-*"]}"#)));
        assert!(!wide.covers(&KeyScope::default()));
        assert!(KeyScope::default().covers(&wide));
        let suffix = scope(r#"{"apps": ["*b"]}"#);
        assert!(!suffix.covers(&scope(r#"{"apps": ["*"]}"#)));
        assert!(suffix.covers(&scope(r#"{"apps": ["a*b"]}"#)));
    }

    #[test]
    fn scope_lists_must_not_be_empty() {
        assert!(serde_json::from_str::<KeyScope>(r#"{"apps": []}"#).is_err());
        assert!(serde_json::from_str::<KeyScope>(r#"{"other": ["x"]}"#).is_err());
        let s: KeyScope = serde_json::from_str(r#"{"connections": ["team-*"]}"#).unwrap();
        assert!(s.allows_app("anything"));
        assert!(s.allows_connection("team-x"));
        assert!(!s.allows_connection("other"));
    }
}
