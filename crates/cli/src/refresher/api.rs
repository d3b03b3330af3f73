//! The refresher's client of the tokenwarden API: `whoami`, the list of due connections
//! and the refresh call. It presents the API key and never asks for a token (the refresh
//! role could not read one anyway).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokenwarden_crypto::ApiKey;
use tokenwarden_domain::{ConnectionId, Roles};
use url::Url;

/// Longer than any refresh the server does (its provider calls time out first), so a
/// slow provider shows as the server's 503 rather than as our timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection's health (docs/api.md, "Connection health").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Failing,
    NeedsReauth,
    Expired,
    Revoked,
    /// A status newer than this binary; left alone rather than guessed at.
    #[serde(other)]
    Other,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Failing => "failing",
            Status::NeedsReauth => "needs_reauth",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Other => "other",
        }
    }

    /// Whether a refresh can help; the others wait for a person to connect again.
    pub fn refreshable(self) -> bool {
        matches!(self, Status::Active | Status::Failing)
    }
}

/// The part of a connection the refresher uses (the server sends more).
#[derive(Debug, Clone, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub status: Status,
    #[serde(default)]
    pub status_reason: Option<String>,
    /// When the server says a refresh is due; absent: nothing to refresh.
    #[serde(default)]
    pub next_refresh_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct Whoami {
    pub vault_id: String,
    pub roles: Roles,
}

/// Why a call failed, in words that are safe to log and to show on `/healthz`: the
/// server's problem code and detail (which never hold a secret), or what went wrong on
/// the way.
#[derive(Debug)]
pub enum CallError {
    Problem {
        status: StatusCode,
        code: String,
        detail: String,
    },
    Transport(String),
    Decode(String),
}

/// Problem codes that may become a metric label; any other is `other`, so a server
/// cannot grow the label set.
const KNOWN_CODES: [&str; 12] = [
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "needs_reauth",
    "token_expired",
    "app_blocked",
    "provider_error",
    "provider_unavailable",
    "rate_limited",
    "invalid_request",
    "internal_error",
];

impl CallError {
    /// A short, fixed word for logs and metric labels.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Problem { code, .. } => KNOWN_CODES
                .iter()
                .find(|known| **known == code.as_str())
                .copied()
                .unwrap_or("other"),
            CallError::Transport(_) => "unreachable",
            CallError::Decode(_) => "bad_answer",
        }
    }

    /// A problem the server answered with this HTTP status.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again soon: the server or the network, not the key or the request.
    pub fn transient(&self) -> bool {
        match self {
            CallError::Problem { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            CallError::Transport(_) => true,
            CallError::Decode(_) => false,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Problem {
                status,
                code,
                detail,
            } => write!(f, "the server answered {status} ({code}): {detail}"),
            CallError::Transport(e) => write!(f, "could not reach the server: {e}"),
            CallError::Decode(e) => write!(f, "the server's answer was not understood: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The problem document's fields we keep (RFC 9457).
#[derive(Deserialize)]
struct ProblemBody {
    code: Option<String>,
    detail: Option<String>,
}

/// Keeps text from the server printable and short before it reaches a log line.
fn tidy(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn problem(status: StatusCode, body: &[u8]) -> CallError {
    let parsed: Option<ProblemBody> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|p| p.code.as_deref())
        .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .unwrap_or("unknown")
        .to_owned();
    let detail = parsed
        .and_then(|p| p.detail)
        .map_or_else(|| "no problem document".to_owned(), |d| tidy(&d, 300));
    CallError::Problem {
        status,
        code,
        detail,
    }
}

/// reqwest's error and its causes on one line (the URL holds no secret: it is the
/// operator's server URL, refused at start-up when it carries credentials).
fn transport(e: &reqwest::Error) -> CallError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    CallError::Transport(tidy(&text, 500))
}

/// A client of one tokenwarden server with one API key.
#[derive(Debug)]
pub struct Api {
    http: Client,
    base: Url,
    key: ApiKey,
}

impl Api {
    pub fn new(base: Url, key: ApiKey) -> anyhow::Result<Self> {
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tokenwarden-refresher/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, base, key })
    }

    /// The base URL plus path segments, each percent-encoded as needed.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Only a cannot-be-a-base URL refuses segments, and start-up refused those.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CallError> {
        // bearer_auth marks the header sensitive, so reqwest never prints it.
        let response = request
            .bearer_auth(self.key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(&e))?;
        if !status.is_success() {
            return Err(problem(status, &body));
        }
        // Only the error's position: its message could quote the answer.
        serde_json::from_slice(&body).map_err(|e| {
            CallError::Decode(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    /// `GET /v1/whoami`.
    pub async fn whoami(&self) -> Result<Whoami, CallError> {
        self.send(self.http.get(self.endpoint(&["v1", "whoami"])))
            .await
    }

    /// `GET /v1/connections?expiring_within=`: those due within `within_secs`,
    /// including the ones already due.
    pub async fn due(&self, within_secs: u64) -> Result<Vec<Connection>, CallError> {
        let mut url = self.endpoint(&["v1", "connections"]);
        url.query_pairs_mut()
            .append_pair("expiring_within", &within_secs.to_string());
        self.send(self.http.get(url)).await
    }

    /// `POST /v1/connections/{id}/refresh`: the connection as it is afterwards.
    pub async fn refresh(&self, id: &ConnectionId) -> Result<Connection, CallError> {
        let url = self.endpoint(&["v1", "connections", id.as_str(), "refresh"]);
        self.send(self.http.post(url)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_gives_its_code_and_detail() {
        let body = br#"{"type":"urn:tokenwarden:problem:needs_reauth","title":"Conflict","status":409,"detail":"connect again","code":"needs_reauth"}"#;
        let e = problem(StatusCode::CONFLICT, body);
        assert_eq!(e.outcome(), "needs_reauth");
        assert_eq!(e.status(), Some(StatusCode::CONFLICT));
        assert!(!e.transient());
        assert_eq!(
            e.to_string(),
            "the server answered 409 Conflict (needs_reauth): connect again"
        );
    }

    #[test]
    fn an_unknown_or_odd_code_never_becomes_a_label() {
        let odd = problem(
            StatusCode::BAD_GATEWAY,
            br#"{"code":"Weird Code!","detail":"x"}"#,
        );
        assert_eq!(odd.outcome(), "other");
        assert!(odd.to_string().contains("(unknown)"));
        let new = problem(StatusCode::CONFLICT, br#"{"code":"brand_new"}"#);
        assert_eq!(new.outcome(), "other");
        let html = problem(StatusCode::SERVICE_UNAVAILABLE, b"<html>busy</html>");
        assert_eq!(html.outcome(), "other");
        assert!(html.transient());
        assert!(html.to_string().ends_with("no problem document"));
    }

    #[test]
    fn server_text_is_cut_short_and_stripped_of_control_characters() {
        assert_eq!(tidy("a\nb\x1b[31mc", 10), "ab[31mc");
        assert_eq!(tidy(&"x".repeat(1000), 300).len(), 300);
    }

    #[test]
    fn statuses_parse_and_only_active_or_failing_are_refreshed() {
        let parse = |s: &str| serde_json::from_str::<Status>(&format!("\"{s}\"")).unwrap();
        assert_eq!(parse("needs_reauth"), Status::NeedsReauth);
        assert_eq!(parse("pending"), Status::Other);
        let refreshable: Vec<&str> = ["active", "failing", "needs_reauth", "expired", "revoked"]
            .into_iter()
            .filter(|s| parse(s).refreshable())
            .collect();
        assert_eq!(refreshable, ["active", "failing"]);
    }

    #[test]
    fn endpoints_keep_a_base_path_and_encode_ids() {
        let key = ApiKey::generate();
        let api = Api::new(Url::parse("https://vault.example.com/tw/").unwrap(), key).unwrap();
        let id = ConnectionId::parse("user+42@example.com").unwrap();
        assert_eq!(
            api.endpoint(&["v1", "connections", id.as_str(), "refresh"])
                .as_str(),
            "https://vault.example.com/tw/v1/connections/user+42@example.com/refresh"
        );
    }
}
