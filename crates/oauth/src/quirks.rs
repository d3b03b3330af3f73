//! The parts of a provider definition that describe how a provider departs from the
//! plain RFC 6749 flow: connect-session parameters in its URLs, the shape of its token
//! requests and responses, its refresh-token rules and how it revokes. Each has a
//! default that is the RFC behaviour, so a definition only names its quirks.

use serde::{Deserialize, Serialize};

use crate::provider_error::DefinitionError;

/// What a connect-session parameter (`{tenant}`, `{subdomain}`, `{shop}`) may hold.
/// Values are checked before they are put into a URL, so none can add a host, a path
/// segment, a query or a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// One DNS label: `[A-Za-z0-9-]{1,63}`, not starting or ending with `-`.
    Label,
    /// A DNS name of such labels joined by dots (at most 253 characters), for
    /// parameters that may be a domain, such as a Microsoft Entra tenant.
    Domain,
}

impl ParamKind {
    /// Whether `value` is acceptable for this kind.
    pub fn accepts(self, value: &str) -> bool {
        let label = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        match self {
            Self::Label => label(value),
            Self::Domain => value.len() <= 253 && value.split('.').all(label),
        }
    }

    /// The rule, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Label => "one DNS label: 1 to 63 of A-Z, a-z, 0-9 and `-`, not at either end",
            Self::Domain => "a DNS name: labels of A-Z, a-z, 0-9 and `-` joined by dots",
        }
    }
}

/// Where the token request puts its parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749 §4.1.3).
    #[default]
    Form,
    /// A JSON object (Notion, some Atlassian examples).
    Json,
    /// In the query string of a GET request.
    Query,
}

/// How the token endpoint is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequestSpec {
    /// `form` (default), `json`, or `query` (a GET request).
    #[serde(default)]
    pub format: BodyFormat,
}

/// The unit of `expires_in`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryUnit {
    #[default]
    Seconds,
    Milliseconds,
}

/// How a token response is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenResponseSpec {
    /// An object member holding the token fields instead of the top level (Slack's
    /// `authed_user` for user tokens). The top level then only supplies extras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_root: Option<String>,
    /// The unit of `expires_in`.
    #[serde(default)]
    pub expires_in_unit: ExpiryUnit,
    /// Lifetime assumed when the response has no `expires_in` (Salesforce sessions).
    /// Without it such a token is taken to never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_lifetime_secs: Option<u64>,
    /// Response fields kept as extras, as dotted paths (`instance_url`, `team.id`);
    /// each becomes an extra of that name. Empty keeps every non-secret field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
}

/// Whether a refresh returns a new refresh token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// The refresh token is kept; refresh responses carry none or the same one.
    Never,
    /// Every refresh answers a new refresh token, which replaces the old one.
    Always,
    /// The provider may answer a new one; when it does it replaces the old one.
    #[default]
    Sometimes,
}

/// Refresh-token rules as the provider documents them. tokenwarden refreshes each
/// connection once at a time and commits a rotated token before anyone sees the new
/// access token whatever these say; they are published so operators can see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshSpec {
    /// Whether refresh rotates the refresh token.
    #[serde(default)]
    pub rotates: Rotation,
    /// A refresh token works once; reuse is refused (and may revoke the grant).
    #[serde(default)]
    pub single_use: bool,
    /// How long a rotated-out refresh token still works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_secs: Option<u64>,
    /// The grant dies when no refresh happens for this many days: each refresh
    /// extends the refresh token or answers a new one with a fresh window (Box,
    /// Microsoft, Xero). A background refresher must refresh well within it.
    #[serde(
        default,
        deserialize_with = "positive_days",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_expiry_days: Option<u32>,
    /// The grant dies this many days after the user authorized it, however often
    /// it is refreshed (Spotify, LinkedIn, Atlassian); only re-connecting helps.
    #[serde(
        default,
        deserialize_with = "positive_days",
        skip_serializing_if = "Option::is_none"
    )]
    pub lifetime_days: Option<u32>,
}

impl RefreshSpec {
    /// How long a connection may go without a refresh before its refresh token dies.
    pub fn idle_expiry(&self) -> Option<chrono::Duration> {
        self.idle_expiry_days.map(days)
    }

    /// How long after authorization the refresh token dies whatever the refreshes.
    pub fn lifetime(&self) -> Option<chrono::Duration> {
        self.lifetime_days.map(days)
    }
}

fn days(n: u32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n))
}

/// A day count of a refresh lifetime: absent, or at least one (zero would say every
/// refresh token is born dead, which no provider means).
fn positive_days<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(de)? {
        Some(0) => Err(serde::de::Error::custom("must be at least one day")),
        days => Ok(days),
    }
}

/// Which stored tokens a revocation sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeTokens {
    /// The refresh token (when there is one), then the access token (RFC 7009 §2.1).
    #[default]
    RefreshThenAccess,
    /// The refresh token when there is one, else the access token: for providers
    /// where revoking the refresh token ends the grant.
    RefreshOrAccess,
    /// Only the access token.
    Access,
}

/// How the client identifies itself at the revocation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationAuth {
    /// HTTP Basic with the client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// `client_id` in the body only.
    ClientId,
    /// `Authorization: Bearer <access token>` (Dropbox, Zendesk, Linear).
    Bearer,
    /// Nothing beside the token.
    None,
}

/// How tokens are revoked when a connection is deleted. The URL is the definition's
/// `revocation_url`, which may contain `{client_id}`, `{token}` and connect-session
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSpec {
    /// HTTP method: `POST` (default) or `DELETE`.
    #[serde(default = "post")]
    pub method: String,
    /// `form` (default), `json`, or `query` (no body; the token goes in the query).
    /// With `{token}` in the URL or bearer authentication no token parameter is sent.
    #[serde(default)]
    pub format: BodyFormat,
    /// Name of the token parameter.
    #[serde(default = "token_param")]
    pub token_param: String,
    /// Whether `token_type_hint` is sent (RFC 7009 §2.1).
    #[serde(default = "yes")]
    pub token_type_hint: bool,
    /// Client authentication; the provider's `client_auth` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RevocationAuth>,
    /// Which tokens are revoked.
    #[serde(default)]
    pub tokens: RevokeTokens,
}

impl Default for RevocationSpec {
    fn default() -> Self {
        Self {
            method: post(),
            format: BodyFormat::Form,
            token_param: token_param(),
            token_type_hint: true,
            auth: None,
            tokens: RevokeTokens::default(),
        }
    }
}

fn post() -> String {
    "POST".to_owned()
}

fn token_param() -> String {
    "token".to_owned()
}

fn yes() -> bool {
    true
}

pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl RevocationSpec {
    pub(crate) fn check(&self) -> Result<(), DefinitionError> {
        if !matches!(self.method.as_str(), "POST" | "DELETE") {
            return Err(DefinitionError::field(
                "revocation.method",
                "must be POST or DELETE",
            ));
        }
        if self.token_param.is_empty() {
            return Err(DefinitionError::field(
                "revocation.token_param",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

impl TokenResponseSpec {
    pub(crate) fn check(&self) -> Result<(), DefinitionError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                })
        };
        if let Some(root) = &self.token_root
            && !name_ok(root)
        {
            return Err(DefinitionError::field(
                "token_response.token_root",
                "must be a field name",
            ));
        }
        if self.extras.iter().any(|e| !name_ok(e)) {
            return Err(DefinitionError::field(
                "token_response.extras",
                "must be dotted field names such as `team.id`",
            ));
        }
        if self.default_lifetime_secs == Some(0) {
            return Err(DefinitionError::field(
                "token_response.default_lifetime_secs",
                "must be more than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_domains_refuse_anything_that_could_move_a_host() {
        for good in ["acme", "a-1", "A9", &"a".repeat(63)] {
            assert!(ParamKind::Label.accepts(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a.b",
            "a/b",
            "a@b",
            "a:1",
            "a?x",
            "a#x",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!ParamKind::Label.accepts(bad), "{bad}");
        }
        assert!(ParamKind::Domain.accepts("contoso.onmicrosoft.com"));
        assert!(ParamKind::Domain.accepts("common"));
        assert!(!ParamKind::Domain.accepts("a..b"));
        assert!(!ParamKind::Domain.accepts("evil.com/x"));
    }

    #[test]
    fn refresh_lifetimes_are_whole_days_and_never_zero() -> Result<(), toml::de::Error> {
        let spec: RefreshSpec = toml::from_str("idle_expiry_days = 90\nlifetime_days = 365\n")?;
        assert_eq!(spec.idle_expiry(), Some(chrono::Duration::days(90)));
        assert_eq!(spec.lifetime(), Some(chrono::Duration::days(365)));
        let none: RefreshSpec = toml::from_str("")?;
        assert_eq!((none.idle_expiry(), none.lifetime()), (None, None));
        for text in ["idle_expiry_days = 0", "lifetime_days = 0"] {
            let err = toml::from_str::<RefreshSpec>(text)
                .err()
                .map(|e| e.message().to_owned());
            assert_eq!(err.as_deref(), Some("must be at least one day"), "{text}");
        }
        assert!(toml::from_str::<RefreshSpec>("lifetime_days = -1").is_err());
        Ok(())
    }
}
