//! Read-only snapshots the handle hands to tests: counters, the request log,
//! recorded authorization requests and issued grants.

use chrono::{DateTime, Utc};

/// Calls per endpoint and per grant type, including failed and faulted ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub authorize_calls: u64,
    pub consent_decisions: u64,
    pub token_calls: u64,
    /// Token calls with `grant_type=authorization_code`.
    pub code_exchanges: u64,
    /// Token calls with `grant_type=refresh_token`.
    pub refresh_calls: u64,
    /// Successful refreshes (a token was issued).
    pub successful_refreshes: u64,
    pub revocations: u64,
    pub userinfo_calls: u64,
    pub api_calls: u64,
    pub discovery_calls: u64,
    pub jwks_calls: u64,
    /// Times a reused refresh token or code revoked a whole grant.
    pub reuse_detections: u64,
    /// Refreshes refused because the refresh token had outlived its idle or
    /// absolute lifetime ([`crate::FakeProvider::set_refresh_token_lifetimes`]).
    pub dead_refresh_token_refusals: u64,
}

/// One HTTP request as the provider received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path relative to the provider's base URL (`/token`, `/api/user`).
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// Decoded form parameters when the body is form-urlencoded.
    pub form: Vec<(String, String)>,
    /// The body when it is JSON.
    pub json: Option<serde_json::Value>,
    pub body_len: usize,
    pub received_at: DateTime<Utc>,
}

impl RecordedRequest {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, &name.to_ascii_lowercase())
    }

    /// First value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// First value of a form parameter.
    pub fn form_param(&self, name: &str) -> Option<&str> {
        find(&self.form, name)
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The parameters of an accepted authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRecord {
    pub client_id: String,
    /// As sent; `None` when the client relied on its single registered URI.
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Every query parameter, including unknown ones (`access_type`, ...).
    pub params: Vec<(String, String)>,
}

/// Identifies a grant: everything issued from one authorization code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId(pub u64);

/// The state of one grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantSnapshot {
    pub id: GrantId,
    pub client_id: String,
    pub scope: String,
    pub code: String,
    /// The newest access token (even if expired or revoked).
    pub access_token: Option<String>,
    /// The refresh token that is currently valid, if any.
    pub refresh_token: Option<String>,
    /// Every access token issued for the grant, oldest first.
    pub access_tokens: Vec<String>,
    /// Every refresh token issued for the grant, oldest first.
    pub refresh_tokens: Vec<String>,
    /// Every `id_token` issued for the grant, oldest first.
    pub id_tokens: Vec<String>,
    /// The whole grant was revoked (code reuse, refresh token reuse,
    /// revocation of a refresh token, or [`crate::FakeProvider::revoke_grant`]).
    pub revoked: bool,
}
