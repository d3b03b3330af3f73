//! `CallbackParams::from_query` (crates/service/src/callback_query.rs): the query string
//! a browser brings to `GET /v1/oauth/callback/{app_id}`, which anyone can craft.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tokenwarden_service::{CallbackParams, CallbackRejected};
use url::form_urlencoded;

use crate::harness::{Outcome, Target, arbitrary_bytes, ensure};

const NAMED: [&str; 4] = ["code", "state", "iss", "error"];

/// A parameter name: one of the four, an extra, or an encoded spelling of one.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(NAMED.to_vec()).prop_map(str::to_owned),
        prop::sample::select(vec![
            "realmId",
            "scope",
            "session_state",
            "hd",
            "prompt",
            "authuser",
            "Code",
            "state ",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}",
        ".{1,6}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._~-]{0,40}",
        ".{0,12}",
        Just("https://accounts.example/tenant?x=1&y=2".to_owned()),
        Just("a+b c%20d&e=f#g".to_owned()),
        Just("\u{0}\r\n\u{202e}é🔑".to_owned()),
    ]
}

/// Encodes pairs the way a browser or a provider might: form-encoded, or raw, with
/// some names percent-encoded character by character.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let pairs = || prop::collection::vec((name(), value()), 0..8);
    prop_oneof![
        pairs().prop_map(|pairs| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            s.finish().into_bytes()
        }),
        (pairs(), any::<bool>()).prop_map(|(pairs, encode_names)| {
            let mut out = Vec::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b'&');
                }
                if encode_names {
                    for b in k.bytes() {
                        out.extend_from_slice(format!("%{b:02X}").as_bytes());
                    }
                } else {
                    out.extend_from_slice(k.as_bytes());
                }
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
            out
        }),
        // The same parameter many times.
        (prop::sample::select(NAMED.to_vec()), 2usize..400).prop_map(|(n, times)| vec![
            format!(
                "{n}=x"
            );
            times
        ]
        .join("&")
        .into_bytes()),
        arbitrary_bytes(),
    ]
}

/// What the query means, worked out independently: every decoded pair in order.
fn decoded_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

fn check(input: &[u8]) -> Outcome {
    // A request line carries text; what is not UTF-8 cannot reach the handler.
    let raw = String::from_utf8_lossy(input);
    let pairs = decoded_pairs(&raw);
    // The first of the four names to appear a second time.
    let repeated = pairs.iter().enumerate().find_map(|(i, (k, _))| {
        NAMED
            .iter()
            .find(|n| **n == k.as_str() && pairs[..i].iter().any(|(seen, _)| seen == k))
    });
    match CallbackParams::from_query(Some(&raw), Vec::new()) {
        Ok(p) => {
            ensure(repeated.is_none(), || {
                format!("a repeated `{}` was accepted", repeated.unwrap())
            })?;
            let single = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            ensure(p.code == single("code"), || {
                "code differs from the query's".into()
            })?;
            ensure(p.state == single("state"), || {
                "state differs from the query's".into()
            })?;
            ensure(p.iss == single("iss"), || {
                "iss differs from the query's".into()
            })?;
            ensure(p.error == single("error"), || {
                "error differs from the query's".into()
            })?;
            let mut extra = BTreeMap::new();
            for (k, v) in &pairs {
                if !NAMED.contains(&k.as_str()) {
                    extra.insert(k.clone(), v.clone());
                }
            }
            ensure(p.extra == extra, || {
                "extra is not the other parameters, last wins".into()
            })?;
            // Debug never shows the code or the state (unless the text is also in a
            // field Debug shows, or in the output's own skeleton).
            let debug = format!("{p:?}");
            let skeleton = format!(
                "{:?}",
                CallbackParams {
                    code: Some(String::new()),
                    state: Some(String::new()),
                    ..CallbackParams::default()
                }
            );
            for secret in [&p.code, &p.state].into_iter().flatten() {
                let shown_elsewhere = [&p.iss, &p.error]
                    .into_iter()
                    .flatten()
                    .any(|v| format!("{v:?}").contains(secret.as_str()));
                if secret.len() >= 4 && !shown_elsewhere && !skeleton.contains(secret.as_str()) {
                    ensure(!debug.contains(secret.as_str()), || {
                        "Debug shows a secret".into()
                    })?;
                }
            }
            // Format -> parse -> equal: re-encoding what was read gives the same params.
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (n, v) in NAMED.iter().zip([&p.code, &p.state, &p.iss, &p.error]) {
                if let Some(v) = v {
                    s.append_pair(n, v);
                }
            }
            for (k, v) in &p.extra {
                s.append_pair(k, v);
            }
            let again = CallbackParams::from_query(Some(&s.finish()), Vec::new()).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("re-encoded: {e}"))
            })?;
            ensure(
                (again.code, again.state, again.iss, again.error, again.extra)
                    == (p.code, p.state, p.iss, p.error, p.extra),
                || "re-encoded params read back differently".into(),
            )?;
        }
        Err(CallbackRejected::RepeatedParameter(n)) => {
            ensure(repeated == Some(&n), || {
                format!("refused for `{n}`, but {repeated:?} repeats")
            })?;
            let message = CallbackRejected::RepeatedParameter(n).to_string();
            ensure(message.contains(n), || {
                "the refusal does not name the parameter".into()
            })?;
        }
        Err(other) => {
            return Err(proptest::test_runner::TestCaseError::fail(format!(
                "unexpected refusal: {other}"
            )));
        }
    }
    Ok(())
}

#[test]
fn callback_query_parser_reads_each_response_parameter_once() {
    Target::new(
        "callback_query",
        &[
            b"&", b"=", b"+", b"%", b"%26", b"%3D", b"%00", b"%C3%A9", b"%ff", b"code=", b"state=",
            b"iss=", b"error=", b"c%6Fde=", b"#", b";",
        ],
    )
    .default_cases(3000)
    .run(structured(), check);
}
