//! The store conformance suite on SQLite: always run, a new file per case.

use std::sync::Arc;

use tokenwarden_store_conformance::{FreshStore, store_conformance_tests};
use tokenwarden_store_sqlite::{SqliteStore, SqliteUrl};

// `cfg(test)` lets clippy's allow-*-in-tests cover this helper too.
#[cfg(test)]
async fn fresh() -> Option<FreshStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = SqliteUrl::from_path(dir.path().join("conformance.db"));
    let store = SqliteStore::open(&url).unwrap();
    Some((Arc::new(store), Box::new(dir)))
}

store_conformance_tests!(fresh);
