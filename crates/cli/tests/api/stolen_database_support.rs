//! The heist of the stolen-database tests: an account with vaults and keys on a real
//! server, then every byte of its SQLite files and what they hold (key slots, key
//! rows, every value), next to every secret the test was shown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::json;
use tokenwarden_crypto::{ApiKey, Binding, Kek, Purpose, random_bytes};
use tokenwarden_domain::VaultId;
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};

use crate::helpers::{Auth, create_key, get, open_db, post};
use crate::stolen_search::read_files;

pub const PASSWORD: &str = "stolen-db: tr0ub4dor & 3 purple staples";
const EMAIL: &str = "victim@example.com";

/// A wrapped copy of a vault DEK, as read from the file, with what binds it.
#[derive(Debug, Clone)]
pub struct Slot {
    pub what: String,
    pub vault: VaultId,
    pub purpose: Purpose,
    pub object: String,
    pub bytes: Vec<u8>,
}

impl Slot {
    pub fn opens_with(&self, kek: &Kek) -> Option<[u8; 32]> {
        kek.unwrap(
            &Binding::new(self.purpose, &self.vault, &self.object),
            &self.bytes,
        )
        .ok()
        .map(|dek| *dek.expose_secret())
    }
}

/// An API key row as the file holds it.
#[derive(Debug)]
pub struct KeyRow {
    pub id: String,
    pub lookup_hash: Vec<u8>,
    pub slot: Slot,
}

/// What the test knows (every secret) and what the thief has (the files).
#[derive(Debug)]
pub struct Heist {
    /// Every API key the test was shown, by id.
    pub keys: HashMap<String, String>,
    pub master_key: [u8; 32],
    /// The DEK of each vault, by vault id.
    pub deks: HashMap<String, [u8; 32]>,
    /// Snapshots of the files: while the server ran (main, WAL, shared memory), and
    /// at rest after it stopped (the WAL checkpointed into the main file).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub slots: Vec<Slot>,
    pub key_rows: Vec<KeyRow>,
    /// Every TEXT and BLOB value of every row of every table.
    pub values: Vec<Vec<u8>>,
    /// The account's stored Argon2id parameters and salt.
    pub kdf: (String, Vec<u8>),
}

fn read_slots(db: &Connection) -> (Vec<Slot>, Vec<KeyRow>) {
    let vault = |s: String| VaultId::parse(&s).unwrap();
    let mut slots = Vec::new();
    let mut key_rows = Vec::new();
    let mut st = db
        .prepare("SELECT id, vault_id, lookup_hash, slot FROM api_keys WHERE slot IS NOT NULL")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, vault_id, lookup_hash, bytes) = row.unwrap();
        key_rows.push(KeyRow {
            id: id.clone(),
            lookup_hash,
            slot: Slot {
                what: format!("api key slot {id}"),
                vault: vault(vault_id),
                purpose: Purpose::ApiKeySlot,
                object: id,
                bytes,
            },
        });
    }
    let mut st = db
        .prepare("SELECT vault_id, account_id, slot FROM vault_members")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (vault_id, account_id, bytes) = row.unwrap();
        slots.push(Slot {
            what: format!("password slot of {account_id} in {vault_id}"),
            vault: vault(vault_id),
            purpose: Purpose::PasswordSlot,
            object: account_id,
            bytes,
        });
    }
    let mut st = db
        .prepare("SELECT id, master_slot FROM vaults WHERE master_slot IS NOT NULL")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap();
    for row in rows {
        let (vault_id, bytes) = row.unwrap();
        slots.push(Slot {
            what: format!("master slot of {vault_id}"),
            vault: vault(vault_id.clone()),
            purpose: Purpose::MasterSlot,
            object: vault_id,
            bytes,
        });
    }
    (slots, key_rows)
}

fn read_values(db: &Connection) -> Vec<Vec<u8>> {
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut values = Vec::new();
    for table in tables {
        let mut st = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                if let ValueRef::Text(b) | ValueRef::Blob(b) = row.get_ref(i).unwrap() {
                    values.push(b.to_vec());
                }
            }
        }
    }
    values
}

/// An account with two vaults (one managed), five API keys in all, every key used once,
/// one failed login; then the files, read while the server runs and at rest after it
/// stopped.
pub async fn steal() -> Heist {
    let master_key: [u8; 32] = random_bytes();
    // The heist reads database files, so it runs on SQLite whatever the suite's
    // backend (the other backends store the same bytes in the same columns).
    let app: TestApp = spawn_app_with(SpawnOptions {
        master_key: Some(master_key),
        data_dir: Some(Arc::new(tempfile::tempdir().unwrap())),
        ..Default::default()
    })
    .await;
    let dir = Arc::clone(&app.dir);
    let db_path = app
        .database
        .sqlite_path()
        .expect("a SQLite file")
        .to_path_buf();
    app.create_account(EMAIL, PASSWORD).await;
    let mut keys = HashMap::new();
    let mut vault_ids = Vec::new();
    for (name, managed) in [("zero-knowledge", false), ("managed", true)] {
        let v = post(
            &app,
            "/v1/vaults",
            Auth::Basic(EMAIL, PASSWORD),
            &json!({"name": name, "managed": managed}),
        )
        .await
        .expect_json(StatusCode::CREATED);
        keys.insert(
            v["api_key"]["id"].as_str().unwrap().to_owned(),
            v["api_key"]["key"].as_str().unwrap().to_owned(),
        );
        vault_ids.push((
            v["id"].as_str().unwrap().to_owned(),
            v["api_key"]["key"].as_str().unwrap().to_owned(),
        ));
    }
    let (vault_a, admin_a) = vault_ids[0].clone();
    for body in [
        json!({"name": "reader", "roles": ["read"]}),
        json!({"name": "connector", "roles": ["connect"], "scope": {"apps": ["github"]}, "expires_in": 86400}),
    ] {
        let k = create_key(&app, &admin_a, &body).await;
        keys.insert(
            k["id"].as_str().unwrap().to_owned(),
            k["key"].as_str().unwrap().to_owned(),
        );
    }
    let member = post(
        &app,
        &format!("/v1/vaults/{vault_a}/api-keys"),
        Auth::Basic(EMAIL, PASSWORD),
        &json!({"name": "member", "roles": ["proxy"]}),
    )
    .await
    .expect_json(StatusCode::CREATED);
    keys.insert(
        member["id"].as_str().unwrap().to_owned(),
        member["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(keys.len(), 5);
    for key in keys.values() {
        let whoami = get(&app, "/v1/whoami", Auth::Bearer(key)).await;
        assert_eq!(whoami.status, StatusCode::OK);
    }
    let failed = get(
        &app,
        "/v1/vaults",
        Auth::Basic(EMAIL, "not the password at all"),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    // Key use is recorded off the request path; wait until every key's is written.
    let mut used = 0;
    for _ in 0..100 {
        used = open_db(&db_path)
            .query_row(
                "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if used == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(used, 5, "key use not recorded");

    let mut files = read_files(&db_path);
    app.stop().await;
    // The files at rest as well: everything checkpointed into the main file.
    {
        let db = Connection::open(&db_path).unwrap();
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    }
    files.extend(read_files(&db_path));
    let main_size = files
        .iter()
        .filter(|(p, _)| *p == db_path)
        .map(|(_, b)| b.len())
        .max();
    assert!(main_size > Some(4096), "nothing was checkpointed");

    let db = open_db(&db_path);
    let (slots, key_rows) = read_slots(&db);
    let values = read_values(&db);
    let kdf: (String, Vec<u8>) = db
        .query_row("SELECT kdf_params, kdf_salt FROM accounts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    drop(db);
    drop(dir);

    let mut deks = HashMap::new();
    for (vault_id, admin) in &vault_ids {
        let row = key_rows
            .iter()
            .find(|k| admin.starts_with(&format!("twk_{}_", k.id)))
            .unwrap();
        let vault = VaultId::parse(vault_id).unwrap();
        let dek = ApiKey::parse(admin)
            .unwrap()
            .derive()
            .kek
            .unwrap(
                &Binding::new(Purpose::ApiKeySlot, &vault, &row.id),
                &row.slot.bytes,
            )
            .unwrap();
        deks.insert(vault_id.clone(), *dek.expose_secret());
    }
    Heist {
        keys,
        master_key,
        deks,
        files,
        slots: slots
            .into_iter()
            .chain(key_rows.iter().map(|k| k.slot.clone()))
            .collect(),
        key_rows,
        values,
        kdf,
    }
}
