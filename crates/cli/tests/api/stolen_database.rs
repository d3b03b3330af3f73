//! A stolen database: every byte of the SQLite files, and nothing in them opens a vault
//! (docs/design.md, "The key hierarchy").

use std::collections::HashSet;

use tokenwarden_crypto::{ApiKey, Kek, MasterKey, PasswordKdf, Purpose};
use tokenwarden_domain::Password;

use crate::helpers::{checksum, secret_of};
use crate::stolen_database_support::{PASSWORD, steal};
use crate::stolen_search::{encodings, find_any};

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
