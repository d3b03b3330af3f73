//! The refused-request cases the bad-input tests share: a case and its exact problem
//! answer, the content-type and size cases of every JSON route, and the check that
//! each case is refused without changing the database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_testing::TestApp;

use crate::helpers::{Auth, Body, PROBLEM_JSON, call, row_counts};

pub const INVALID: &str = "invalid_request";
const NOT_JSON_CT: &str = "the body must be JSON (Content-Type: application/json)";
const TOO_LARGE: &str = "the body must be at most 65536 bytes";

/// One refused request: what it sends and exactly what it must get.
#[derive(Debug)]
pub struct Case {
    pub what: &'static str,
    body: Body,
    status: StatusCode,
    code: &'static str,
    detail: String,
}

pub fn bad(what: &'static str, body: Body, detail: &str) -> Case {
    Case {
        what,
        body,
        status: StatusCode::BAD_REQUEST,
        code: INVALID,
        detail: detail.to_owned(),
    }
}

pub fn bad_json(what: &'static str, body: Value, detail: &str) -> Case {
    bad(what, Body::json(&body), detail)
}

pub fn case(
    what: &'static str,
    body: Body,
    status: StatusCode,
    code: &'static str,
    detail: &str,
) -> Case {
    Case {
        what,
        body,
        status,
        code,
        detail: detail.to_owned(),
    }
}

/// Sends every case and checks its answer and that no row changed; reports every
/// mismatch at once.
pub async fn assert_refused(app: &TestApp, path: &str, auth: Auth<'_>, cases: Vec<Case>) {
    let mut mismatches = Vec::new();
    for c in cases {
        let before = row_counts(app).await;

        let answer = call(app, Method::POST, path, auth, Some(c.body)).await;

        let expected = json!({
            "type": format!("urn:tokenwarden:problem:{}", c.code),
            "title": c.status.canonical_reason().unwrap(),
            "status": c.status.as_u16(),
            "detail": c.detail,
            "code": c.code,
        });
        let body: Option<Value> = serde_json::from_str(&answer.text).ok();
        if answer.status != c.status
            || answer.content_type() != Some(PROBLEM_JSON)
            || body.as_ref() != Some(&expected)
        {
            mismatches.push(format!(
                "{}: got {} {:?} {}",
                c.what,
                answer.status,
                answer.content_type(),
                answer.text
            ));
        }
        if row_counts(app).await != before {
            mismatches.push(format!("{} changed the database", c.what));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// The content-type and size cases every JSON route shares.
pub fn transport_cases(valid: &Value) -> Vec<Case> {
    let valid = valid.to_string();
    let mut oversized = valid.clone();
    oversized.insert_str(1, &format!("\"padding\": \"{}\", ", "x".repeat(70 * 1024)));
    vec![
        case(
            "text/plain",
            Body::raw("text/plain", valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "a form",
            Body::raw("application/x-www-form-urlencoded", "name=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "no content type",
            Body::untyped(valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "a body over 64 KiB",
            Body::raw("application/json", oversized),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            TOO_LARGE,
        ),
        bad(
            "an empty body",
            Body::raw("application/json", ""),
            "the body is not valid JSON (line 1, column 0)",
        ),
        bad(
            "trailing characters",
            Body::raw("application/json", format!("{valid} {{}}")),
            "the body has trailing characters after the JSON value",
        ),
    ]
}
