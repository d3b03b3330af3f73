//! A stolen database: every byte of the SQLite files, and nothing in them opens a vault
//! (design.md, "The key hierarchy").

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::json;
use tokenwarden_crypto::{ApiKey, Binding, Kek, MasterKey, PasswordKdf, Purpose, random_bytes};
use tokenwarden_domain::{Password, VaultId};
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};

use crate::helpers::{Auth, checksum, create_key, get, open_db, post, secret_of};

const PASSWORD: &str = "stolen-db: tr0ub4dor & 3 purple staples";
const EMAIL: &str = "victim@example.com";

/// A wrapped copy of a vault DEK, as read from the file, with what binds it.
#[derive(Debug, Clone)]
struct Slot {
    what: String,
    vault: VaultId,
    purpose: Purpose,
    object: String,
    bytes: Vec<u8>,
}

impl Slot {
    fn opens_with(&self, kek: &Kek) -> Option<[u8; 32]> {
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
struct KeyRow {
    id: String,
    lookup_hash: Vec<u8>,
    slot: Slot,
}

/// What the test knows (every secret) and what the thief has (the files).
#[derive(Debug)]
struct Heist {
    /// Every API key the test was shown, by id.
    keys: HashMap<String, String>,
    master_key: [u8; 32],
    /// The DEK of each vault, by vault id.
    deks: HashMap<String, [u8; 32]>,
    /// Snapshots of the files: while the server ran (main, WAL, shared memory), and
    /// at rest after it stopped (the WAL checkpointed into the main file).
    files: Vec<(PathBuf, Vec<u8>)>,
    slots: Vec<Slot>,
    key_rows: Vec<KeyRow>,
    /// Every TEXT and BLOB value of every row of every table.
    values: Vec<Vec<u8>>,
    /// The account's stored Argon2id parameters and salt.
    kdf: (String, Vec<u8>),
}

pub(crate) fn read_files(db_path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path, bytes));
        }
    }
    files
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
async fn steal() -> Heist {
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

pub(crate) fn encodings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        bytes.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        STANDARD.encode(bytes).into_bytes(),
        STANDARD_NO_PAD.encode(bytes).into_bytes(),
        URL_SAFE.encode(bytes).into_bytes(),
        URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
    ]
}

/// Finds any needle (each at least 16 bytes) in any file: every 16-byte window of the
/// files is looked up among the needles' first 16 bytes, and a hit is confirmed whole.
pub(crate) fn find_any(files: &[(PathBuf, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut by_prefix: HashMap<&[u8], Vec<&(String, Vec<u8>)>> = HashMap::new();
    for needle in needles {
        assert!(needle.1.len() >= 16, "{} is too short to search", needle.0);
        by_prefix.entry(&needle.1[..16]).or_default().push(needle);
    }
    let mut found = Vec::new();
    for (path, bytes) in files {
        for (i, window) in bytes.windows(16).enumerate() {
            if let Some(candidates) = by_prefix.get(window) {
                for (what, needle) in candidates {
                    if bytes[i..].starts_with(needle) {
                        found.push(format!("{what} at {} offset {i}", path.display()));
                    }
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_database_holds_no_password_api_key_secret_or_data_key() {
    let heist = steal().await;
    let mut needles: Vec<(String, Vec<u8>)> = vec![("the password".into(), PASSWORD.into())];
    for (id, key) in &heist.keys {
        needles.push((format!("key {id}"), key.clone().into_bytes()));
        let secret = secret_of(key);
        for (i, w) in secret.as_bytes().windows(16).enumerate() {
            needles.push((format!("secret of {id} from {i}"), w.to_vec()));
        }
    }
    for (vault, dek) in &heist.deks {
        for (i, encoded) in encodings(dek).into_iter().enumerate() {
            needles.push((format!("DEK of {vault}, encoding {i}"), encoded));
        }
        for (i, w) in dek.windows(16).enumerate() {
            needles.push((format!("DEK of {vault}, bytes {i}.."), w.to_vec()));
        }
    }
    for (i, encoded) in encodings(&heist.master_key).into_iter().enumerate() {
        needles.push((format!("master key, encoding {i}"), encoded));
    }
    // The search itself must work: the public key ids are in the files.
    let ids: Vec<(String, Vec<u8>)> = heist
        .keys
        .keys()
        .map(|id| (id.clone(), id.clone().into_bytes()))
        .collect();
    assert!(
        !find_any(&heist.files, &ids).is_empty(),
        "the search finds nothing at all"
    );

    let found = find_any(&heist.files, &needles);

    assert!(found.is_empty(), "secrets in the files: {found:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_a_stolen_database_unwraps_a_key_slot() {
    let heist = steal().await;
    // Every slot is real: each opens with what its holder presents, to its vault's DEK.
    // So when no candidate below opens one, that is a result, not a broken harness.
    let (params, salt) = &heist.kdf;
    let password = Password::parse(PASSWORD.to_owned()).unwrap();
    let password_kek = PasswordKdf::from_stored(params, salt)
        .unwrap()
        .derive(&password)
        .unwrap()
        .kek;
    let master_kek = MasterKey::from_bytes(heist.master_key).kek();
    assert_eq!(heist.slots.len(), 5 + 2 + 1, "{:#?}", heist.slots);
    for slot in &heist.slots {
        let opened = match slot.purpose {
            Purpose::ApiKeySlot => {
                let key = ApiKey::parse(&heist.keys[&slot.object]).unwrap();
                slot.opens_with(&key.derive().kek)
            }
            Purpose::PasswordSlot => slot.opens_with(&password_kek),
            Purpose::MasterSlot => slot.opens_with(&master_kek),
            other => panic!("unexpected slot purpose {other:?}"),
        };
        assert_eq!(
            opened,
            Some(heist.deks[slot.vault.as_str()]),
            "{} does not open with its holder's secret",
            slot.what
        );
    }

    // Every 32-byte window of every file, at every offset, and of every column value,
    // tried as the KEK of every slot.
    let mut candidates: HashSet<[u8; 32]> = HashSet::new();
    for (_, bytes) in &heist.files {
        for w in bytes.windows(32) {
            candidates.insert(w.try_into().unwrap());
        }
    }
    for value in &heist.values {
        for w in value.windows(32) {
            candidates.insert(w.try_into().unwrap());
        }
    }
    let candidates: Vec<[u8; 32]> = candidates.into_iter().collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = candidates.len().div_ceil(threads);
    let slots = &heist.slots;
    let opened: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut opened = Vec::new();
                    for candidate in part {
                        let kek = Kek::from_candidate(*candidate);
                        for slot in slots {
                            if slot.opens_with(&kek).is_some() {
                                opened.push(slot.what.clone());
                            }
                        }
                    }
                    opened
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(candidates.len() > 1000, "{} candidates", candidates.len());
    assert!(opened.is_empty(), "opened from the files alone: {opened:?}");

    // Every column value, read as an API key secret through the real derivation: no
    // 40-character base62 run of its text, hex or base64 form matches a key's stored
    // lookup hash or opens its slot.
    let mut secrets: HashSet<String> = HashSet::new();
    for value in &heist.values {
        let mut forms: Vec<String> = encodings(value)
            .into_iter()
            .filter_map(|b| String::from_utf8(b).ok())
            .collect();
        forms.dedup();
        for form in forms {
            let chars: Vec<char> = form.chars().collect();
            for w in chars.windows(40) {
                if w.iter().all(char::is_ascii_alphanumeric) {
                    secrets.insert(w.iter().collect());
                }
            }
        }
    }
    assert!(secrets.len() > 100, "{} candidate secrets", secrets.len());
    let mut matched = Vec::new();
    for row in &heist.key_rows {
        let real = ApiKey::parse(&heist.keys[&row.id]).unwrap().derive();
        assert!(
            real.lookup_hash.matches(&row.lookup_hash),
            "derivation control"
        );
        for secret in &secrets {
            let body = format!("twk_{}_{secret}", row.id);
            let text = format!("{body}{}", checksum(&body));
            let material = ApiKey::parse(&text).unwrap().derive();
            if material.lookup_hash.matches(&row.lookup_hash)
                || row.slot.opens_with(&material.kek).is_some()
            {
                matched.push(format!("{} with {secret}", row.id));
            }
        }
    }
    assert!(
        matched.is_empty(),
        "column values usable as secrets: {matched:?}"
    );
}
