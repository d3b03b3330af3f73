//! The audit trail through the API (`GET /v1/audit`) and its hash chain
//! (`tokenwarden audit verify`): each action writes exactly one record, and editing or
//! deleting a record in the database is caught and named.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::Auth;
use crate::oauth_support::{OAuthEnv, oauth_env, send};

const BINARY: &str = env!("CARGO_BIN_EXE_tokenwarden");

async fn audit_page(env: &OAuthEnv, query: &str) -> Vec<Value> {
    send(
        &env.app,
        Method::GET,
        &format!("/v1/audit{query}"),
        Auth::Bearer(&env.vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK)
    .as_array()
    .unwrap()
    .clone()
}

/// Runs `f` and returns the audit records it added, oldest first.
async fn added_by<F: std::future::Future<Output = ()>>(env: &OAuthEnv, f: F) -> Vec<Value> {
    let before = audit_page(env, "?limit=1000").await;
    let newest = before.first().map(|r| r["id"].as_str().unwrap().to_owned());
    f.await;
    let mut after = audit_page(env, "?limit=1000").await;
    if let Some(newest) = newest {
        let at = after
            .iter()
            .position(|r| r["id"] == newest.as_str())
            .unwrap();
        after.truncate(at);
    }
    after.reverse();
    after
}

fn actions(records: &[Value]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_action_writes_exactly_one_record_without_secrets() {
    let env = oauth_env().await;
    let admin = Auth::Bearer(&env.vault.admin_key);

    let r = added_by(&env, async {
        env.connect("c1").await;
    })
    .await;
    assert_eq!(
        actions(&r),
        [
            ("connect_session.create", "success"),
            ("connection.connect", "success")
        ]
    );
    assert_eq!(r[1]["target"], "c1");
    assert_eq!(r[1]["key_id"], Value::Null);
    assert_eq!(r[1]["ip"], "127.0.0.1");

    let r = added_by(&env, async {
        env.token("c1", "").await.expect_json(StatusCode::OK);
    })
    .await;
    assert_eq!(actions(&r), [("connection.token_read", "success")]);
    assert_eq!(r[0]["target"], "c1");
    assert!(r[0]["key_id"].as_str().unwrap().len() == 16);

    let r = added_by(&env, async {
        send(
            &env.app,
            Method::POST,
            "/v1/connections/c1/refresh",
            Auth::Bearer(&env.connect_key),
            None,
        )
        .await
        .expect_json(StatusCode::OK);
    })
    .await;
    assert_eq!(
        actions(&r),
        [
            ("connection.refresh", "success"),
            ("connection.refresh_request", "success")
        ]
    );

    let r = added_by(&env, async {
        let a = send(
            &env.app,
            Method::PATCH,
            "/v1/apps/fake",
            admin,
            Some(&json!({"scopes": ["profile"]})),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    })
    .await;
    assert_eq!(actions(&r), [("app.update", "success")]);
    assert_eq!(r[0]["target"], "fake");

    let grant = env.grant();
    let r = added_by(&env, async {
        let d = send(
            &env.app,
            Method::DELETE,
            "/v1/connections/c1",
            Auth::Bearer(&env.connect_key),
            None,
        )
        .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.text);
    })
    .await;
    assert_eq!(actions(&r), [("connection.delete", "success")]);

    // No record holds a secret: not the tokens, the client secret or any key.
    let all = audit_page(&env, "?limit=1000").await;
    let text = serde_json::to_string(&all).unwrap();
    let mut secrets: Vec<&str> = grant.access_tokens.iter().map(String::as_str).collect();
    secrets.extend(grant.refresh_tokens.iter().map(String::as_str));
    secrets.extend([
        crate::oauth_support::CLIENT_SECRET,
        env.vault.admin_key.as_str(),
        env.read_key.as_str(),
        env.connect_key.as_str(),
    ]);
    assert!(secrets.len() >= 7);
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in the audit log");
    }
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_only_an_unscoped_admin_reads_it() {
    let env = oauth_env().await;
    for i in 0..5 {
        env.connect(&format!("c{i}")).await;
    }
    let all = audit_page(&env, "?limit=1000").await;
    assert!(all.len() >= 12, "{}", all.len());
    // Compared as times: RFC 3339 text drops the fraction at a whole second, so
    // "…:13Z" sorts after "…:13.500Z" as text although it is earlier.
    let at = |record: &Value| {
        chrono::DateTime::parse_from_rfc3339(record["at"].as_str().unwrap()).unwrap()
    };
    for pair in all.windows(2) {
        assert!(at(&pair[0]) >= at(&pair[1]), "{pair:?}");
    }
    // Walk pages of 3 with `before` and the Link header; together they are the whole log.
    let mut walked: Vec<Value> = Vec::new();
    let mut next = Some("/v1/audit?limit=3".to_owned());
    while let Some(path) = next {
        let answer = send(
            &env.app,
            Method::GET,
            &path,
            Auth::Bearer(&env.vault.admin_key),
            None,
        )
        .await;
        let page = answer.expect_json(StatusCode::OK);
        let page = page.as_array().unwrap();
        assert!(page.len() <= 3);
        walked.extend(page.iter().cloned());
        next = answer.header("link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
    }
    assert_eq!(walked, all);

    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?before=nope"] {
        let a = send(
            &env.app,
            Method::GET,
            &format!("/v1/audit{bad}"),
            Auth::Bearer(&env.vault.admin_key),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }

    let scoped = send(
        &env.app,
        Method::POST,
        "/v1/api-keys",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"name": "scoped admin", "roles": ["admin"], "scope": {"apps": ["fake"]}})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    for key in [
        scoped["key"].as_str().unwrap(),
        env.read_key.as_str(),
        env.connect_key.as_str(),
    ] {
        let a = send(&env.app, Method::GET, "/v1/audit", Auth::Bearer(key), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    }
}

fn verify(db: &std::path::Path) -> (bool, String) {
    let out = Command::new(BINARY)
        .args(["audit", "verify", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .env_remove("TOKENWARDEN_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn audit_verify_names_the_first_edited_or_deleted_record() {
    let env = oauth_env().await;
    env.connect("c1").await;
    env.token("c1", "").await.expect_json(StatusCode::OK);
    // A failed login lands in the server chain (no vault).
    let failed = send(
        &env.app,
        Method::GET,
        "/v1/vaults",
        Auth::Basic("ada@example.com", "wrong-password-123"),
        None,
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let Some(db_path) = env.app.sqlite_file("edits the audit log through rusqlite") else {
        return;
    };

    let (ok, text) = verify(&db_path);
    assert!(ok, "{text}");
    assert!(text.contains("audit log intact: 2 chains"), "{text}");
    assert!(text.contains("server (no vault): 1 records"), "{text}");

    // The operator with the database, editing it behind the server's back.
    let db = rusqlite::Connection::open(&db_path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let ids: Vec<(i64, String)> = db
        .prepare("SELECT seq, id FROM audit_log WHERE vault_id = ?1 ORDER BY seq")
        .unwrap()
        .query_map([&env.vault.vault_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(ids.len() >= 5);

    // Edit one record's outcome: that record is named.
    let (_, edited) = &ids[2];
    db.execute(
        "UPDATE audit_log SET outcome = 'denied' WHERE id = ?1",
        [edited],
    )
    .unwrap();
    let (ok, text) = verify(&db_path);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("record {edited}")), "{text}");
    assert!(text.contains("edited"), "{text}");
    db.execute(
        "UPDATE audit_log SET outcome = 'success' WHERE id = ?1",
        [edited],
    )
    .unwrap();
    assert!(verify(&db_path).0);

    // Cut the newest record off the end: every record still links, the head does not.
    let (_, last) = ids.last().unwrap();
    db.execute("DELETE FROM audit_log WHERE id = ?1", [last])
        .unwrap();
    let (ok, text) = verify(&db_path);
    assert!(!ok, "{text}");
    assert!(text.contains("the head says"), "{text}");

    // Delete one in the middle: the record after it is named (before the head is looked at).
    let (_, deleted) = &ids[1];
    let (_, after_deleted) = &ids[2];
    db.execute("DELETE FROM audit_log WHERE id = ?1", [deleted])
        .unwrap();
    let (ok, text) = verify(&db_path);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("record {after_deleted}")), "{text}");
    assert!(text.contains("deleted"), "{text}");
}
