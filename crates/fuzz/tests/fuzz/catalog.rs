//! `parse_catalog_file` (crates/oauth/src/catalog.rs): the TOML provider definitions an
//! operator drops into the catalog directory, read at start-up.

use std::path::Path;

use proptest::prelude::*;
use tokenwarden_oauth::{HttpPolicy, ProviderDefinition, parse_catalog_file};
use toml::{Table, Value};

use crate::harness::{Outcome, Target, TestCaseError, arbitrary_bytes, ensure};

const FILE: &str = "ops/fuzz.toml";

fn builtin_texts() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../oauth/providers");
    let mut texts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                format!("providers/{name}"),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    texts.sort();
    texts
}

const KEYS: [&str; 24] = [
    "key",
    "display_name",
    "authorization_url",
    "token_url",
    "revocation_url",
    "userinfo_url",
    "issuer",
    "jwks_uri",
    "api_base_urls",
    "scope_separator",
    "default_scopes",
    "client_auth",
    "pkce",
    "authorize_params",
    "iss_parameter_supported",
    "params",
    "scope_param",
    "refresh_url",
    "token_request",
    "token_response",
    "refresh",
    "revocation",
    "redirect_extras",
    "docs",
];

/// Values of every TOML type, and strings that are almost URLs, templates or keys.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "https://acme.example/oauth/token",
            "http://127.0.0.1:9/token",
            "https://user:pass@acme.example/t",
            "https://{shop}.acme.example/a",
            "https://{tenant}/{tenant}/x",
            "https://acme.example/{unclosed",
            "https://acme.example/t?x=1#frag",
            "https://[::1]/t",
            "https://169.254.169.254/latest",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://xn--80ak6aa92e.com/",
            "https://acme.example/\u{202e}",
            "",
            " ",
            ",",
            "acme",
            "ACME",
            "label",
            "host",
            "always",
            "never",
            "json",
            "form",
            "milliseconds",
            "DELETE",
            "post",
            "basic",
            "bearer",
            "scope",
            "state",
            "a.b.c",
        ])
        .prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
                    "[a-z_{}]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Remove(prop::sample::Index),
    Set(String, Value),
    SetNested(prop::sample::Index, String, Value),
}

/// A built-in definition with a few fields removed, retyped or added.
fn structured(builtins: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Remove),
        (
            prop_oneof![
                4 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
                1 => "[a-z_]{1,10}"
            ],
            value()
        )
            .prop_map(|(k, v)| Edit::Set(k, v)),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "token_root",
                "extras",
                "expires_in_unit",
                "default_lifetime_secs",
                "format",
                "rotates",
                "method",
                "auth",
                "tokens",
                "token_param",
                "shop",
                "tenant",
            ])
            .prop_map(str::to_owned),
            value()
        )
            .prop_map(|(i, k, v)| Edit::SetNested(i, k, v)),
    ];
    prop_oneof![
        4 => (prop::sample::select(builtins), prop::collection::vec(edit, 1..4)).prop_map(
            |(text, edits)| {
                let mut table: Table = text.parse().unwrap();
                for edit in edits {
                    match edit {
                        Edit::Remove(i) if !table.is_empty() => {
                            let key = table.keys().nth(i.index(table.len())).unwrap().clone();
                            table.remove(&key);
                        }
                        Edit::Remove(_) => {}
                        Edit::Set(k, v) => {
                            table.insert(k, v);
                        }
                        Edit::SetNested(i, k, v) => {
                            let tables = ["token_request", "token_response", "refresh", "revocation", "params", "authorize_params"];
                            let name = tables[i.index(tables.len())];
                            let entry = table
                                .entry(name)
                                .or_insert_with(|| Value::Table(Table::new()));
                            if let Value::Table(t) = entry {
                                t.insert(k, v);
                            }
                        }
                    }
                }
                toml::to_string(&table).unwrap_or_default().into_bytes()
            }
        ),
        1 => arbitrary_bytes(),
    ]
}

fn check(policy: &HttpPolicy, input: &[u8]) -> Outcome {
    // The catalog loader reads files with `read_to_string`: only UTF-8 reaches it.
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let parsed = parse_catalog_file(FILE, text, policy);
    let direct = ProviderDefinition::from_toml(text, policy);
    match (&parsed, &direct) {
        (Ok(a), Ok(b)) => ensure(a == b, || "from_toml reads another definition".into())?,
        (Err(_), Err(_)) => {}
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "the catalog loader and from_toml disagree: {:?} / {:?}",
                a.as_ref().err(),
                b.as_ref().err()
            )));
        }
    }
    match parsed {
        Ok(def) => {
            // A definition serialises as its spec: TOML and JSON round trips.
            let toml_text = toml::to_string(&def)
                .map_err(|e| TestCaseError::fail(format!("cannot write TOML: {e}")))?;
            let again = parse_catalog_file(FILE, &toml_text, policy).map_err(|e| {
                TestCaseError::fail(format!("its own TOML is refused: {e}\n{toml_text}"))
            })?;
            ensure(again == def, || {
                format!("the TOML round trip changed it:\n{toml_text}")
            })?;
            let json_text = serde_json::to_string(&def).unwrap();
            let again = ProviderDefinition::from_json(&json_text, policy)
                .map_err(|e| TestCaseError::fail(format!("its own JSON is refused: {e}")))?;
            ensure(again == def, || "the JSON round trip changed it".into())?;
        }
        Err(e) => {
            ensure(e.file == FILE, || {
                format!("the error names file {:?}", e.file)
            })?;
            ensure(!e.field.is_empty(), || "the error names no field".into())?;
            ensure(!e.problem.is_empty(), || "the error says no problem".into())?;
            ensure(
                e.to_string().starts_with(&format!("{FILE}: {}: ", e.field)),
                || format!("not `<file>: <field>: <problem>`: {e}"),
            )?;
        }
    }
    Ok(())
}

#[test]
fn catalog_loader_names_the_field_at_fault_and_round_trips_what_it_accepts() {
    let policy = HttpPolicy::default();
    let builtins = builtin_texts();
    let mut target = Target::new(
        "catalog",
        &[
            b"=",
            b"\"",
            b"'''",
            b"\n[",
            b"]\n",
            b"[[",
            b"]]",
            b"{",
            b"}",
            b"\\u0000",
            b"1e400",
            b"9223372036854775808",
            b"true",
            b"key = ",
            b"https://",
            b"{shop}",
            b".",
        ],
    )
    .default_cases(1500);
    for (name, text) in &builtins {
        target = target.seed(name.clone(), text.as_bytes());
    }
    let texts = builtins.into_iter().map(|(_, t)| t).collect();
    target.run(structured(texts), |input| check(&policy, input));
}
