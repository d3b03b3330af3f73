//! Embedded migrations, applied at start (rusqlite_migration tracks them in
//! `PRAGMA user_version`).

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};
use tokenwarden_store::StoreError;

/// The migrations' names, in order (reported by `tokenwarden migrate`).
const NAMES: [&str; 3] = ["0001_foundation", "0002_oauth", "0003_links_audit_chain"];

/// Brings the schema up to date; returns the names of the migrations applied.
pub(crate) fn apply(conn: &mut Connection) -> Result<Vec<&'static str>, StoreError> {
    let failed =
        |e: rusqlite_migration::Error| StoreError::Corrupt(format!("migration failed: {e}"));
    let version = |conn: &Connection| -> Result<usize, StoreError> {
        migrations()
            .current_version(conn)
            .map(usize::from)
            .map_err(failed)
    };
    let before = version(conn)?;
    migrations().to_latest(conn).map_err(failed)?;
    let after = version(conn)?;
    Ok(NAMES.get(before..after).unwrap_or_default().to_vec())
}

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_foundation.sql")),
        M::up(include_str!("../migrations/0002_oauth.sql")),
        M::up_with_hook(
            include_str!("../migrations/0003_links_audit_chain.sql"),
            |tx: &rusqlite::Transaction<'_>| {
                crate::audit::chain_existing(tx).map_err(rusqlite_migration::HookError::from)
            },
        ),
    ])
}

#[cfg(test)]
mod tests {
    use tokenwarden_store::audit::{ChainVerifier, SERVER_CHAIN};

    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }

    #[test]
    fn apply_reports_what_it_ran_and_then_nothing() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut conn, 1).unwrap();
        assert_eq!(
            super::apply(&mut conn).unwrap(),
            vec!["0002_oauth", "0003_links_audit_chain"]
        );
        assert!(super::apply(&mut conn).unwrap().is_empty());
    }

    /// A database written before the chain existed gets its old records chained, per
    /// vault and for the server chain, so `audit verify` holds from the first record.
    #[test]
    fn upgrade_chains_existing_audit_records() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO audit_log (id, vault_id, at, key_id, account_id, action, target, outcome, ip)
             VALUES ('aud_aaaaaaaaaaaaaaaaaaaa', 'vlt_aaaaaaaaaaaaaaaaaaaa', 1, NULL, NULL, 'vault.create', NULL, 'success', '127.0.0.1'),
                    ('aud_bbbbbbbbbbbbbbbbbbbb', NULL, 2, NULL, NULL, 'login.failure', NULL, 'denied', NULL),
                    ('aud_cccccccccccccccccccc', 'vlt_aaaaaaaaaaaaaaaaaaaa', 3, 'k', NULL, 'api_key.create', 't', 'success', NULL);",
        )
        .unwrap();
        super::migrations().to_latest(&mut conn).unwrap();

        let heads = crate::audit::audit_heads(&mut conn).unwrap();
        assert_eq!(heads.len(), 2);
        for head in &heads {
            let records = crate::audit::audit_chain(&mut conn, &head.chain, 0, 100).unwrap();
            let mut v = ChainVerifier::new(&head.chain);
            for r in &records {
                v.check(r).unwrap();
            }
            let expected = if head.chain == SERVER_CHAIN { 1 } else { 2 };
            assert_eq!(v.finish(Some(head)).unwrap(), expected);
        }
    }
}
