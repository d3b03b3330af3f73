//! A stolen database server: the `pg_dump` or `mysqldump` output of a database the
//! suite ran a whole vault life on holds no password, API key, key secret, master key,
//! client secret or OAuth token, in raw, hex (what both tools print for binary
//! columns) or base64 form. Runs on the suite's server backend; on SQLite the files
//! themselves are searched by `stolen_database`.

use std::path::PathBuf;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenwarden_crypto::random_bytes;
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_testing::{Backend, SpawnOptions, spawn_app_with};

use crate::helpers::{Auth, secret_of};
use crate::oauth_support::{
    CLIENT_SECRET, SCOPES, create_app, provider_config, register_provider, role_key, send,
};
use crate::stolen_search::{encodings, find_any};

const PASSWORD: &str = "stolen-dump: tr0ub4dor & 3 purple staples";
const EMAIL: &str = "victim@example.com";

pub(crate) fn dump(backend: Backend, url: &str) -> Vec<u8> {
    let parsed = url::Url::parse(url).unwrap();
    let out = match backend {
        Backend::Postgres => Command::new("pg_dump")
            .args(["--no-owner", "--data-only", url])
            .output()
            .unwrap(),
        Backend::Mysql => Command::new("mysqldump")
            .arg("--protocol=tcp")
            .arg("--hex-blob")
            .arg(format!("--host={}", parsed.host_str().unwrap()))
            .arg(format!("--port={}", parsed.port().unwrap_or(3306)))
            .arg(format!("--user={}", parsed.username()))
            .arg(parsed.path().trim_start_matches('/'))
            .output()
            .unwrap(),
        Backend::Sqlite => unreachable!(),
    };
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumped_database_holds_no_secret() {
    let master_key: [u8; 32] = random_bytes();
    let app = spawn_app_with(SpawnOptions {
        master_key: Some(master_key),
        ..Default::default()
    })
    .await;
    let backend = app.database.backend();
    if backend == Backend::Sqlite {
        eprintln!("stolen_dump: the SQLite files are searched by stolen_database");
        return;
    }
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    app.create_account(EMAIL, PASSWORD).await;
    let mut keys = Vec::new();
    let mut vault_ids = Vec::new();
    for (name, managed) in [("zero-knowledge", false), ("managed", true)] {
        let v = send(
            &app,
            Method::POST,
            "/v1/vaults",
            Auth::Basic(EMAIL, PASSWORD),
            Some(&json!({"name": name, "managed": managed})),
        )
        .await
        .expect_json(StatusCode::CREATED);
        keys.push(v["api_key"]["key"].as_str().unwrap().to_owned());
        vault_ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let admin = keys[0].clone();
    register_provider(&app, &admin, &provider).await;
    create_app(&app, &admin, "fake", &SCOPES).await;
    let connect_key = role_key(&app, &admin, "connect").await;
    let read_key = role_key(&app, &admin, "read").await;
    keys.extend([connect_key.clone(), read_key.clone()]);
    for i in 0..2 {
        let session = send(
            &app,
            Method::POST,
            "/v1/connect-sessions",
            Auth::Bearer(&connect_key),
            Some(&json!({"app": "fake", "connection_id": format!("c{i}")})),
        )
        .await
        .expect_json(StatusCode::CREATED);
        let callback = crate::oauth_support::follow_authorization(
            &app.client,
            session["authorization_url"].as_str().unwrap(),
        )
        .await;
        let page = app.client.get(&callback).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        // The first read re-encrypts the sealed token set under the DEK; a forced
        // refresh writes a second generation.
        for query in ["", "?force_refresh=true"] {
            send(
                &app,
                Method::GET,
                &format!("/v1/connections/c{i}/token{query}"),
                Auth::Bearer(&read_key),
                None,
            )
            .await
            .expect_json(StatusCode::OK);
        }
    }

    let dumped = dump(backend, app.database.url());
    let files = vec![(PathBuf::from(format!("{backend:?} dump")), dumped)];

    let mut needles: Vec<(String, Vec<u8>)> = vec![("the password".into(), PASSWORD.into())];
    for (n, key) in keys.iter().enumerate() {
        needles.push((format!("key {n}"), key.clone().into_bytes()));
        for (i, w) in secret_of(key).as_bytes().windows(16).enumerate() {
            needles.push((format!("secret of key {n} from {i}"), w.to_vec()));
        }
    }
    for (i, encoded) in encodings(&master_key).into_iter().enumerate() {
        needles.push((format!("master key, encoding {i}"), encoded));
    }
    needles.push(("the client secret".into(), CLIENT_SECRET.into()));
    let mut tokens = 0;
    for grant in provider.grants() {
        for token in grant.access_tokens.iter().chain(&grant.refresh_tokens) {
            for (i, encoded) in encodings(token.as_bytes()).into_iter().enumerate() {
                needles.push((format!("an OAuth token, encoding {i}"), encoded));
            }
            tokens += 1;
        }
    }
    assert!(tokens >= 8, "{tokens} tokens issued");
    // The search itself must work: the vault ids are in the dump.
    let ids: Vec<(String, Vec<u8>)> = vault_ids
        .iter()
        .map(|id| (id.clone(), id.clone().into_bytes()))
        .collect();
    assert!(
        !find_any(&files, &ids).is_empty(),
        "the search finds nothing at all"
    );

    let found = find_any(&files, &needles);

    assert!(
        found.is_empty(),
        "secrets in the {backend:?} dump: {found:#?}"
    );
}
