//! The published OpenAPI document cannot drift from the handlers: it is generated from
//! them, and this test compares it with the committed `docs/openapi.json`. After an
//! intended API change, regenerate with `UPDATE_OPENAPI=1 cargo test -p tokenwarden-server`.

use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_openapi_document_matches_the_committed_snapshot() {
    let doc = tokenwarden_server::openapi();
    let generated = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = snapshot_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the handlers; run \
         `UPDATE_OPENAPI=1 cargo test -p tokenwarden-server --test openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_error_bodies_as_problem_json() {
    let doc = serde_json::to_value(tokenwarden_server::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object();
                    let ok = content.is_some_and(|c| {
                        c.contains_key("application/problem+json") || c.contains_key("text/html")
                    });
                    assert!(ok, "{method} {path} {status} has no problem+json body");
                }
            }
        }
    }
}
