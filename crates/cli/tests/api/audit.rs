//! The audit log: what was done, by whom, to what, from where; never a secret.

use chrono::Utc;
use reqwest::StatusCode;
use rusqlite::types::ValueRef;
use serde_json::{Value, json};
use tokenwarden_testing::spawn_app;

use crate::helpers::{Auth, PASSWORD, create_key, delete, get, open_db, post, secret_of};

/// One audit row without its id and time (checked separately).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    vault_id: Option<String>,
    key_id: Option<String>,
    account_id: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    ip: Option<String>,
}

fn row(
    vault_id: Option<&str>,
    key_id: Option<&str>,
    account_id: Option<&str>,
    action: &str,
    target: Option<&str>,
    outcome: &str,
) -> Row {
    Row {
        vault_id: vault_id.map(str::to_owned),
        key_id: key_id.map(str::to_owned),
        account_id: account_id.map(str::to_owned),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        outcome: outcome.to_owned(),
        ip: Some("127.0.0.1".to_owned()),
    }
}

#[tokio::test]
async fn key_creation_deletion_and_failed_logins_are_audited_exactly() {
    let app = spawn_app().await;
    let account = app.create_account("alice@example.com", PASSWORD).await;
    let account_id = account["id"].as_str().unwrap().to_owned();
    let vault = post(
        &app,
        "/v1/vaults",
        Auth::Basic("alice@example.com", PASSWORD),
        &json!({"name": "team"}),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let vault_id = vault["id"].as_str().unwrap();
    let admin_id = vault["api_key"]["id"].as_str().unwrap();
    let admin_key = vault["api_key"]["key"].as_str().unwrap();
    let made = create_key(&app, admin_key, &json!({"name": "ci", "roles": ["read"]})).await;
    let made_id = made["id"].as_str().unwrap();
    let member = post(
        &app,
        &format!("/v1/vaults/{vault_id}/api-keys"),
        Auth::Basic("alice@example.com", PASSWORD),
        &json!({"name": "member", "roles": ["proxy"]}),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let member_id = member["id"].as_str().unwrap();
    let deleted = delete(
        &app,
        &format!("/v1/api-keys/{made_id}"),
        Auth::Bearer(admin_key),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let wrong_password = "Tr0ub4dor&3-wrong";
    let failed = get(
        &app,
        "/v1/vaults",
        Auth::Basic("alice@example.com", wrong_password),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let unknown = get(
        &app,
        "/v1/vaults",
        Auth::Basic("nobody@example.com", wrong_password),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    let Some(path) = app.sqlite_file("reads the audit rows through rusqlite") else {
        return;
    };
    let db = open_db(&path);
    let mut st = db
        .prepare(
            "SELECT id, at, vault_id, key_id, account_id, action, target, outcome, ip
             FROM audit_log ORDER BY seq",
        )
        .unwrap();
    let rows: Vec<(String, i64, Row)> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                Row {
                    vault_id: r.get(2)?,
                    key_id: r.get(3)?,
                    account_id: r.get(4)?,
                    action: r.get(5)?,
                    target: r.get(6)?,
                    outcome: r.get(7)?,
                    ip: r.get(8)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    let acc = Some(account_id.as_str());
    let vlt = Some(vault_id);
    assert_eq!(
        rows.iter().map(|(_, _, r)| r.clone()).collect::<Vec<_>>(),
        vec![
            row(vlt, None, acc, "vault.create", vlt, "success"),
            row(vlt, None, acc, "api_key.create", Some(admin_id), "success"),
            row(
                vlt,
                Some(admin_id),
                None,
                "api_key.create",
                Some(made_id),
                "success"
            ),
            row(vlt, None, acc, "api_key.create", Some(member_id), "success"),
            row(
                vlt,
                Some(admin_id),
                None,
                "api_key.delete",
                Some(made_id),
                "success"
            ),
            row(None, None, acc, "login.failure", acc, "denied"),
            row(None, None, None, "login.failure", None, "denied"),
        ]
    );
    let now = Utc::now().timestamp_millis();
    let mut ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
    for (id, at, _) in &rows {
        crate::helpers::assert_id(&Value::from(id.as_str()), "aud");
        assert!(
            (now - at).abs() < 60_000,
            "audit time {at} is not near {now}"
        );
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len());

    // No secret in any column of any audit row.
    let secrets = [
        PASSWORD.to_owned(),
        wrong_password.to_owned(),
        admin_key.to_owned(),
        secret_of(admin_key).to_owned(),
        made["key"].as_str().unwrap().to_owned(),
        secret_of(made["key"].as_str().unwrap()).to_owned(),
        member["key"].as_str().unwrap().to_owned(),
        secret_of(member["key"].as_str().unwrap()).to_owned(),
    ];
    let mut all = db.prepare("SELECT * FROM audit_log").unwrap();
    let columns = all.column_count();
    let mut rows = all.query([]).unwrap();
    let mut cells = 0;
    while let Some(r) = rows.next().unwrap() {
        for i in 0..columns {
            let bytes: Vec<u8> = match r.get_ref(i).unwrap() {
                ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                ValueRef::Integer(n) => n.to_string().into_bytes(),
                ValueRef::Real(f) => f.to_string().into_bytes(),
                ValueRef::Null => Vec::new(),
            };
            let text = String::from_utf8_lossy(&bytes);
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret in audit_log: {text}"
                );
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 7 * columns);
}
