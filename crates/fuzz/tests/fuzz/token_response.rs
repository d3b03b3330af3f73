//! `parse_token_response_with` (crates/oauth/src/token.rs): whatever a token endpoint
//! answers, under each status class, content type and provider response mapping.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokenwarden_oauth::{ExpiryUnit, TokenError, TokenResponseSpec, parse_token_response_with};

use crate::harness::{Outcome, Target, arbitrary_bytes, ensure};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap()
}

const STATUSES: [u16; 5] = [200, 201, 400, 401, 503];
const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/vnd.api+JSON"),
    None,
];

fn specs() -> Vec<TokenResponseSpec> {
    vec![
        TokenResponseSpec::default(),
        // Slack's user tokens: nested token fields, a few extras kept by path.
        TokenResponseSpec {
            token_root: Some("authed_user".into()),
            extras: vec!["team.id".into(), "authed_user.id".into(), "a.b.c.d".into()],
            ..TokenResponseSpec::default()
        },
        TokenResponseSpec {
            expires_in_unit: ExpiryUnit::Milliseconds,
            default_lifetime_secs: Some(u64::MAX),
            ..TokenResponseSpec::default()
        },
    ]
}

/// A JSON value of any shape, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a known field: the right type, a wrong type, or a nasty right type.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[A-Za-z0-9._~-]{0,24}".prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(json!("\u{0}\u{202e}\u{fffd}é🔑")),
        Just(json!("18446744073709551616")),
        Just(json!(" 3600 ")),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(3600.5)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        any::<u32>().prop_map(Value::from),
        json_value(),
    ]
}

const FIELDS: [&str; 12] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "id_token",
    "error",
    "error_description",
    "authed_user",
    "team",
    "client_secret",
    "Password",
];

fn response_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        "[A-Za-z0-9]{1,16}",
        prop::collection::vec((prop::sample::select(FIELDS.to_vec()), field_value()), 0..6),
        prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(token, fields, extras, nest)| {
            let mut map: Map<String, Value> = extras.into_iter().collect();
            map.insert("access_token".into(), Value::from(format!("AT-{token}")));
            for (name, value) in fields {
                map.insert(name.into(), value);
            }
            if nest {
                let inner = map.clone();
                map.insert("authed_user".into(), Value::Object(inner));
            }
            map
        })
}

fn structured() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => response_object().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        // The same as a form body (every value a string, as GitHub answers).
        1 => response_object().prop_map(|m| {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &m {
                match v {
                    Value::String(s) => form.append_pair(k, s),
                    other => form.append_pair(k, &other.to_string()),
                };
            }
            form.finish().into_bytes()
        }),
        // Huge and deeply nested documents.
        1 => (1usize..20_000).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (1usize..200).prop_map(|n| {
            let mut v = json!({"access_token": "a"});
            for _ in 0..n {
                v = json!({"access_token": "a", "authed_user": v, "x_token": "t"});
            }
            serde_json::to_vec(&v).unwrap()
        }),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => arbitrary_bytes(),
    ]
}

/// Whether a field name is one `strip_secrets` must have removed.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("token") || n.ends_with("secret") || n.contains("password")
}

fn no_secret_names(map: &Map<String, Value>) -> bool {
    fn clean(value: &Value) -> bool {
        match value {
            Value::Object(m) => no_secret_names(m),
            Value::Array(items) => items.iter().all(clean),
            _ => true,
        }
    }
    map.iter().all(|(k, v)| !secret_name(k) && clean(v))
}

fn check_one(
    status: StatusCode,
    ct: Option<&str>,
    spec: &TokenResponseSpec,
    body: &[u8],
) -> Outcome {
    let result = parse_token_response_with(status, ct, body, now(), spec);
    let shown = match &result {
        Ok(t) => format!("{t:?}"),
        Err(e) => format!("{e} {e:?}"),
    };
    match result {
        Ok(t) => {
            ensure(status.is_success(), || {
                format!("a token from HTTP {status}")
            })?;
            let token = t.access_token.expose_secret();
            ensure(!token.is_empty(), || "an empty access token".into())?;
            ensure(t.expires_at.is_none_or(|at| at >= now()), || {
                "a token that expired before it arrived".into()
            })?;
            ensure(
                t.token_type == "Bearer" || !t.token_type.eq_ignore_ascii_case("bearer"),
                || format!("token_type {:?} not normalised", t.token_type),
            )?;
            ensure(
                spec.extras.is_empty() || t.extras.len() <= spec.extras.len(),
                || "extras beyond the spec's list".into(),
            )?;
            if spec.extras.is_empty() {
                ensure(no_secret_names(&t.extras), || {
                    format!("a secret-named field reached extras: {:?}", t.extras.keys())
                })?;
            }
            // The Debug output holds no generated token (`AT-...`) unless the same text
            // is also a field that may be shown (token_type, scopes, extras).
            let visible = format!(
                "{:?} {:?} {}",
                t.token_type,
                t.scopes,
                Value::Object(t.extras.clone())
            );
            if token.starts_with("AT-") && !visible.contains(token) {
                ensure(!shown.contains(token), || {
                    "Debug shows the access token".into()
                })?;
            }
        }
        Err(e) => {
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                ensure(e.is_transient(), || {
                    format!("HTTP {status} is not transient")
                })?;
            }
            let code = e
                .provider_error()
                .map(|p| p.error.clone())
                .unwrap_or_default();
            ensure(code.len() <= 64, || {
                "an error code over 64 characters".into()
            })?;
            ensure(
                code.chars()
                    .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
                || format!("an error code outside RFC 6749's charset: {code:?}"),
            )?;
            // The message shows no token from the body (only the cleaned error code).
            if !code.contains("AT-") {
                ensure(!e.to_string().contains("AT-"), || {
                    format!("the error message repeats the body: {e}")
                })?;
            }
            if let TokenError::Malformed { .. } = e {
                ensure(!shown.contains("AT-"), || {
                    "a malformed error holds the body".into()
                })?;
            }
        }
    }
    Ok(())
}

/// A well-formed JSON object with a non-empty string `access_token`, no `error` and a
/// readable `expires_in` parses back to the same values (format -> parse -> equal).
fn check_round_trip(body: &[u8]) -> Outcome {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let Some(Value::String(token)) = fields.get("access_token") else {
        return Ok(());
    };
    let expires = match fields.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|s| s < 1 << 32) => n.as_u64(),
        Some(_) => return Ok(()),
    };
    if token.is_empty() || fields.contains_key("error") {
        return Ok(());
    }
    let t = parse_token_response_with(
        StatusCode::OK,
        Some("application/json"),
        body,
        now(),
        &TokenResponseSpec::default(),
    )
    .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("refused: {e}")))?;
    ensure(t.access_token.expose_secret() == token, || {
        "another access token".into()
    })?;
    ensure(
        t.expires_at == expires.map(|s| now() + chrono::Duration::seconds(s as i64)),
        || "another expiry".into(),
    )?;
    let refresh = match fields.get("refresh_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    ensure(
        t.refresh_token.as_ref().map(|r| r.expose_secret()) == refresh,
        || "another refresh token".into(),
    )
}

fn check(specs: &[TokenResponseSpec], body: &[u8]) -> Outcome {
    for status in STATUSES {
        let status = StatusCode::from_u16(status).unwrap();
        for ct in CONTENT_TYPES {
            for spec in specs {
                check_one(status, ct, spec, body)?;
            }
        }
    }
    check_round_trip(body)
}

#[test]
fn token_response_parser_never_panics_keeps_secrets_out_and_round_trips() {
    let specs = specs();
    Target::new(
        "token_response",
        &[
            b"\"access_token\":",
            b"\"expires_in\":",
            b"\"refresh_token\":\"\"",
            b"\"scope\":[",
            b"\"error\":",
            b"\"authed_user\":{",
            b"1e400",
            b"-0",
            b"null",
            b"[",
            b"{",
            b"}",
            b"\"\\ud800\"",
            b"&",
            b"=",
            b"+",
        ],
    )
    .default_cases(1200)
    .run(structured(), |body| check(&specs, body));
}
