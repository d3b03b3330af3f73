//! Roles of an API key (docs/api.md, "Conventions"; docs/design.md, "Roles and scopes").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// What a key may do. `admin` implies every other role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Role {
    /// Keys, apps, providers, audit, and everything below.
    Admin,
    /// Connect sessions, import and delete connections.
    Connect,
    /// Connection metadata and tokens.
    Read,
    /// Proxy calls and metadata; never the token itself.
    Proxy,
    /// List connections and refresh them; never the token: for a background refresher.
    Refresh,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Connect,
        Role::Read,
        Role::Proxy,
        Role::Refresh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Connect => "connect",
            Role::Read => "read",
            Role::Proxy => "proxy",
            Role::Refresh => "refresh",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::Connect => 2,
            Role::Read => 4,
            Role::Proxy => 8,
            Role::Refresh => 16,
        }
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "admin" => Ok(Role::Admin),
            "connect" => Ok(Role::Connect),
            "read" => Ok(Role::Read),
            "proxy" => Ok(Role::Proxy),
            "refresh" => Ok(Role::Refresh),
            _ => Err(ParseError::new(
                "role",
                "must be one of admin, connect, read, proxy, refresh",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A non-empty set of roles.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Roles(u8);

impl Roles {
    pub fn admin() -> Self {
        Self(Role::Admin.bit())
    }

    pub fn from_roles(roles: &[Role]) -> Result<Self, ParseError> {
        let bits = roles.iter().fold(0, |acc, r| acc | r.bit());
        if bits == 0 {
            return Err(ParseError::new("roles", "must name at least one role"));
        }
        Ok(Self(bits))
    }

    /// Parses the comma-separated form used in storage.
    pub fn parse_list(s: &str) -> Result<Self, ParseError> {
        let roles = s
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Role>, _>>()?;
        Self::from_roles(&roles)
    }

    /// The comma-separated storage form, in canonical order.
    pub fn to_list(self) -> String {
        self.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.0 & r.bit() != 0)
    }

    /// Whether a key with these roles may act as `role` (admin may act as anything).
    pub fn allows(self, role: Role) -> bool {
        self.0 & (Role::Admin.bit() | role.bit()) != 0
    }

    /// Whether every role of `other` is allowed by these roles.
    pub fn covers(self, other: Roles) -> bool {
        other.iter().all(|r| self.allows(r))
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Roles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let roles = Vec::<Role>::deserialize(d)?;
        Self::from_roles(&roles).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Roles {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(<Role as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .into()
    }
}

impl utoipa::ToSchema for Roles {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_every_role() {
        let admin = Roles::admin();
        assert!(Role::ALL.iter().all(|r| admin.allows(*r)));
        let read = Roles::from_roles(&[Role::Read]).unwrap();
        assert!(read.allows(Role::Read));
        assert!(!read.allows(Role::Admin));
        assert!(!read.allows(Role::Proxy));
        assert!(admin.covers(read));
        assert!(!read.covers(admin));
    }

    #[test]
    fn roles_round_trip_through_their_list_form() {
        let r = Roles::from_roles(&[Role::Proxy, Role::Read, Role::Read]).unwrap();
        assert_eq!(r.to_list(), "read,proxy");
        assert_eq!(Roles::parse_list("read,proxy").unwrap(), r);
        let refresh = Roles::parse_list("refresh").unwrap();
        assert!(refresh.allows(Role::Refresh) && !refresh.allows(Role::Read));
        assert_eq!(refresh.to_list(), "refresh");
        assert!(Roles::parse_list("").is_err());
        assert!(Roles::parse_list("root").is_err());
        assert!(Roles::from_roles(&[]).is_err());
    }
}
