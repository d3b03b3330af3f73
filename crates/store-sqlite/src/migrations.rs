//! Embedded migrations, applied at start (rusqlite_migration tracks them in
//! `PRAGMA user_version`).

use rusqlite::{Connection, params};
use rusqlite_migration::{M, Migrations};
use tokenwarden_store::StoreError;
use tokenwarden_store::audit::{AuditFields, GENESIS, audit_hash};

/// The migrations' names, in order (reported by `tokenwarden migrate`).
const NAMES: [&str; 5] = [
    "0001_foundation",
    "0002_oauth",
    "0003_links_audit_chain",
    "0004_connection_lifecycle",
    "0005_webhooks",
];

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
                chain_existing(tx).map_err(rusqlite_migration::HookError::from)
            },
        ),
        M::up(include_str!("../migrations/0004_connection_lifecycle.sql")),
        M::up(include_str!("../migrations/0005_webhooks.sql")),
    ])
}

/// Migration hook: chains the records written before the chain existed, in `seq`
/// order, so every database verifies from its first record.
pub(crate) fn chain_existing(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    type Row10 = (
        i64,
        String,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let rows: Vec<Row10> = tx
        .prepare(
            "SELECT seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip
             FROM audit_log ORDER BY seq",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut heads: std::collections::HashMap<String, (i64, i64, [u8; 32])> =
        std::collections::HashMap::new();
    for (seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip) in &rows {
        let f = AuditFields {
            id,
            vault_id: vault_id.as_deref(),
            at_ms: *at,
            key_id: key_id.as_deref(),
            account_id: account_id.as_deref(),
            action,
            target: target.as_deref(),
            outcome,
            ip: ip.as_deref(),
        };
        let chain = f.chain().to_owned();
        let (length, prev) = heads
            .get(&chain)
            .map(|(l, _, h)| (*l, *h))
            .unwrap_or((0, GENESIS));
        let hash = audit_hash(&prev, &f);
        tx.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            params![seq, prev.as_slice(), hash.as_slice()],
        )?;
        heads.insert(chain, (length + 1, *seq, hash));
    }
    for (chain, (length, last_seq, hash)) in heads {
        tx.execute(
            "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES (?1, ?2, ?3, ?4)",
            params![chain, length, last_seq, hash.as_slice()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokenwarden_store::audit::records;
    use tokenwarden_store::audit::{ChainVerifier, SERVER_CHAIN};
    use tokenwarden_store::rows::{Columns, Dialect};

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
            vec![
                "0002_oauth",
                "0003_links_audit_chain",
                "0004_connection_lifecycle",
                "0005_webhooks"
            ]
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

        // Read back through the shared mappers (not the store, which would open a pool).
        let heads = conn
            .prepare(
                "SELECT h.chain, h.length, h.last_seq, h.hash FROM audit_heads h ORDER BY h.chain",
            )
            .map_err(crate::convert::db)
            .and_then(|mut st| crate::cursor::all(&mut st, [], |c| records::head(c)))
            .unwrap();
        assert_eq!(heads.len(), 2);
        for head in &heads {
            let records = conn
                .prepare(&format!(
                    "SELECT {} FROM audit_log l WHERE coalesce(l.vault_id, '') = ?1 ORDER BY l.seq",
                    Columns::select(Dialect::Sqlite, &[&records::AUDIT_COLUMNS])
                ))
                .map_err(crate::convert::db)
                .and_then(|mut st| {
                    crate::cursor::all(&mut st, [&head.chain], |c| records::chained_record(c))
                })
                .unwrap();
            let mut v = ChainVerifier::new(&head.chain);
            for r in &records {
                v.check(r).unwrap();
            }
            let expected = if head.chain == SERVER_CHAIN { 1 } else { 2 };
            assert_eq!(v.finish(Some(head)).unwrap(), expected);
        }
    }
}
