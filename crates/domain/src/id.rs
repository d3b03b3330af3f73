//! Public identifiers: a short type prefix and random lowercase alphanumerics.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_suffix(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn is_suffix(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = concat!($prefix, "_");
            const SUFFIX_LEN: usize = 20;

            /// A new random id (103 bits).
            pub fn generate(rng: &mut impl Rng) -> Self {
                Self(format!("{}{}", Self::PREFIX, random_suffix(rng, Self::SUFFIX_LEN)))
            }

            pub fn parse(s: &str) -> Result<Self, ParseError> {
                match s.strip_prefix(Self::PREFIX) {
                    Some(rest) if is_suffix(rest, Self::SUFFIX_LEN) => Ok(Self(s.to_owned())),
                    _ => Err(ParseError::new(
                        $what,
                        concat!("must look like ", $prefix, "_ followed by 20 lowercase letters or digits"),
                    )),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
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

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[a-z0-9]{20}$")))
                    .examples([concat!($prefix, "_0123456789abcdefghij")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A vault: the unit of encryption (one data key) and of sharing.
    VaultId, "vlt", "vault id"
);
prefixed_id!(
    /// A person's account, which signs in with email and password.
    AccountId, "acc", "account id"
);
prefixed_id!(
    /// One audit record.
    AuditId, "aud", "audit id"
);
prefixed_id!(
    /// An OAuth app (client credentials at a provider); also the path of its callback.
    AppId, "app", "app id"
);
prefixed_id!(
    /// One authorization-code flow in progress.
    ConnectSessionId, "cs", "connect session id"
);

impl AuditId {
    /// Characters of the time prefix of [`AuditId::generate_at`].
    const TIME_LEN: usize = 9;

    /// A new id that sorts by time: `at_ms` (milliseconds since 1970) in 9 base-36
    /// digits, then 11 random characters (56 bits). Records are written in time order,
    /// so their ids are appended at the end of the unique index instead of landing on
    /// a random page of it: a batch of records dirties a page or two of that index,
    /// not one page per record.
    pub fn generate_at(at_ms: i64, rng: &mut impl Rng) -> Self {
        // Digits in ASCII order, so that the text sorts as the number does.
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut t = u64::try_from(at_ms).unwrap_or(0);
        let mut time = [b'0'; Self::TIME_LEN];
        for slot in time.iter_mut().rev() {
            *slot = DIGITS[(t % 36) as usize];
            t /= 36;
        }
        let mut id = String::with_capacity(Self::PREFIX.len() + Self::SUFFIX_LEN);
        id.push_str(Self::PREFIX);
        id.extend(time.iter().map(|&b| char::from(b)));
        id.push_str(&random_suffix(rng, Self::SUFFIX_LEN - Self::TIME_LEN));
        Self(id)
    }
}

/// The public lookup id of an API key: the `<id>` in `twk_<id>_<secret><checksum>`.
/// Knowing it grants nothing; it only finds the row that the secret must match.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub const LEN: usize = 16;

    pub fn generate(rng: &mut impl Rng) -> Self {
        Self(random_suffix(rng, Self::LEN))
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if is_suffix(s, Self::LEN) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "api key id",
                "must be 16 lowercase letters or digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ApiKeyId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ApiKeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ApiKeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for ApiKeyId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9]{16}$"))
            .into()
    }
}

impl utoipa::ToSchema for ApiKeyId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_sort_by_time_and_parse_back() {
        let mut rng = rand::thread_rng();
        let times = [
            0,
            1,
            35,
            36,
            1_700_000_000_000,
            1_700_000_000_001,
            4_000_000_000_000,
        ];
        let ids: Vec<AuditId> = times
            .iter()
            .map(|&t| AuditId::generate_at(t, &mut rng))
            .collect();
        for id in &ids {
            assert_eq!(AuditId::parse(id.as_str()).as_ref(), Ok(id));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0].as_str().starts_with("aud_000000000"));
        // Same millisecond: the random part still tells them apart.
        let a = AuditId::generate_at(5, &mut rng);
        let b = AuditId::generate_at(5, &mut rng);
        assert_ne!(a, b);
    }

    #[test]
    fn generated_ids_parse_back() {
        let mut rng = rand::thread_rng();
        let v = VaultId::generate(&mut rng);
        assert_eq!(VaultId::parse(v.as_str()).unwrap(), v);
        let k = ApiKeyId::generate(&mut rng);
        assert_eq!(ApiKeyId::parse(k.as_str()).unwrap(), k);
    }

    #[test]
    fn ids_with_the_wrong_prefix_or_characters_are_refused() {
        assert!(VaultId::parse("acc_0123456789abcdefghij").is_err());
        assert!(VaultId::parse("vlt_0123456789ABCDEFGHIJ").is_err());
        assert!(VaultId::parse("vlt_0123456789abcdefghi").is_err());
        assert!(VaultId::parse("vlt_0123456789abcdefghij ").is_err());
        assert!(ApiKeyId::parse("0123456789abcde_").is_err());
        assert!(ApiKeyId::parse("").is_err());
    }
}
