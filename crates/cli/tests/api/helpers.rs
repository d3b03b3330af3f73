//! Shared helpers: raw requests, whole answers, problem+json assertions, the API key
//! format, and read-only views of the database file.

use std::path::Path;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use tokenwarden_testing::TestApp;

pub const PROBLEM_JSON: &str = "application/problem+json";
pub const PASSWORD: &str = "correct horse battery staple";

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// `twk_` + 16-character id + `_` + 40-character secret + 6-character checksum.
pub const KEY_LEN: usize = 4 + 16 + 1 + 40 + 6;

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
    /// The whole `Authorization` header value, as given.
    Raw(&'a str),
}

/// A request body: bytes and the Content-Type sent with them (`None`: no header).
#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: Option<&'static str>,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn json(value: &Value) -> Self {
        Self::raw("application/json", value.to_string().into_bytes())
    }

    pub fn raw(content_type: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type: Some(content_type),
            bytes: bytes.into(),
        }
    }

    pub fn untyped(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type: None,
            bytes: bytes.into(),
        }
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// Asserts the status and a JSON content type, and returns the body.
    pub fn expect_json(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert_eq!(
            self.content_type(),
            Some("application/json"),
            "{}",
            self.text
        );
        self.json()
    }
}

pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Body>,
) -> Answer {
    fetch(&app.client, method, &app.url(path), auth, body).await
}

/// A request to an absolute URL (a browser following a redirect), read whole.
pub async fn fetch(
    client: &Client,
    method: Method,
    url: &str,
    auth: Auth<'_>,
    body: Option<Body>,
) -> Answer {
    let mut request = client.request(method, url);
    request = match auth {
        Auth::None => request,
        Auth::Bearer(key) => request.header("authorization", format!("Bearer {key}")),
        Auth::Basic(email, password) => {
            request.header("authorization", TestApp::basic(email, password))
        }
        Auth::Raw(value) => request.header("authorization", value),
    };
    if let Some(body) = body {
        if let Some(ct) = body.content_type {
            request = request.header("content-type", ct);
        }
        request = request.body(body.bytes);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        text,
    }
}

pub async fn get(app: &TestApp, path: &str, auth: Auth<'_>) -> Answer {
    call(app, Method::GET, path, auth, None).await
}

pub async fn post(app: &TestApp, path: &str, auth: Auth<'_>, body: &Value) -> Answer {
    call(app, Method::POST, path, auth, Some(Body::json(body))).await
}

pub async fn delete(app: &TestApp, path: &str, auth: Auth<'_>) -> Answer {
    call(app, Method::DELETE, path, auth, None).await
}

/// Asserts a problem+json answer, exactly: status, content type, and the whole body.
pub fn assert_problem(answer: &Answer, status: StatusCode, code: &str, detail: &str) {
    assert_eq!(answer.status, status, "unexpected answer: {}", answer.text);
    assert_eq!(answer.content_type(), Some(PROBLEM_JSON), "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({
            "type": format!("urn:tokenwarden:problem:{code}"),
            "title": status.canonical_reason().unwrap(),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        })
    );
}

/// The one 401 every unusable API key gets.
pub fn assert_key_unauthorized(answer: &Answer) {
    assert_problem(
        answer,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid credentials",
    );
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

/// The one 401 every failed account login gets.
pub fn assert_basic_unauthorized(answer: &Answer) {
    assert_problem(
        answer,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid email and password",
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"tokenwarden\", charset=\"UTF-8\"")
    );
}

pub fn assert_forbidden(answer: &Answer, detail: &str) {
    assert_problem(answer, StatusCode::FORBIDDEN, "forbidden", detail);
}

/// The names of a JSON object's fields, sorted.
pub fn fields(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

pub fn assert_fields(value: &Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(fields(value), expected, "fields of {value}");
}

/// Parses an RFC 3339 timestamp that must be in UTC (`...Z`).
pub fn utc(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    assert!(text.ends_with('Z'), "not UTC: {text}");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"))
        .with_timezone(&Utc)
}

/// Asserts a timestamp lies within a minute of `now` (the test's clock may be ahead of
/// the wall clock by what the test advanced).
pub fn assert_recent(value: &Value, now: DateTime<Utc>) {
    let at = utc(value);
    let off = (at - now).num_seconds().abs();
    assert!(off < 60, "{at} is not near {now}");
}

pub fn assert_id(value: &Value, prefix: &str) -> String {
    let id = value
        .as_str()
        .unwrap_or_else(|| panic!("not an id: {value}"));
    let rest = id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or_else(|| panic!("{id} lacks the prefix {prefix}_"));
    assert_eq!(rest.len(), 20, "{id}");
    assert!(
        rest.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    id.to_owned()
}

/// The CRC32 checksum of a key body as 6 base62 digits (the format's definition).
pub fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

/// Asserts `key` is `twk_<id>_<40 base62><6 base62 CRC32>` with the given id.
pub fn assert_key_format(key: &str, id: &str) {
    assert_eq!(key.len(), KEY_LEN, "{key}");
    let rest = key.strip_prefix("twk_").expect("twk_ prefix");
    let (key_id, rest) = rest.split_at(16);
    assert_eq!(key_id, id);
    assert!(
        key_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{key_id}"
    );
    let rest = rest.strip_prefix('_').expect("_ after the id");
    let (secret, sum) = rest.split_at(40);
    assert!(
        secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret}"
    );
    assert_eq!(sum, checksum(&key[..KEY_LEN - 6]), "checksum of {key}");
}

/// The secret part of a key: the 40 characters after the second underscore.
pub fn secret_of(key: &str) -> &str {
    &key[21..61]
}

/// A key with `key`'s id and another secret, with a correct checksum.
pub fn with_secret(key: &str, secret: &str) -> String {
    assert_eq!(secret.len(), 40);
    let body = format!("{}{secret}", &key[..21]);
    let sum = checksum(&body);
    format!("{body}{sum}")
}

/// Opens the database read-only, as an outsider would.
pub fn open_db(path: &Path) -> Connection {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the database read-only")
}

/// Rows per table (and live keys), to show a refused request changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCounts {
    pub accounts: i64,
    pub vaults: i64,
    pub vault_members: i64,
    pub api_keys: i64,
    pub live_api_keys: i64,
    pub audit_log: i64,
}

pub async fn row_counts(app: &TestApp) -> RowCounts {
    let count = |table: &'static str| async move {
        app.database
            .query_i64(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("a count")
    };
    RowCounts {
        accounts: count("accounts").await,
        vaults: count("vaults").await,
        vault_members: count("vault_members").await,
        api_keys: count("api_keys").await,
        live_api_keys: count("api_keys WHERE revoked_at IS NULL").await,
        audit_log: count("audit_log").await,
    }
}

/// Creates a key with the vault's admin key; returns the whole 201 body.
pub async fn create_key(app: &TestApp, admin_key: &str, body: &Value) -> Value {
    post(app, "/v1/api-keys", Auth::Bearer(admin_key), body)
        .await
        .expect_json(StatusCode::CREATED)
}

/// `whoami` with a key; the status only.
pub async fn whoami_status(app: &TestApp, key: &str) -> StatusCode {
    get(app, "/v1/whoami", Auth::Bearer(key)).await.status
}
