//! [`AuditStore`] on SQLite: appending to the hash chain, and reading it back.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::records::{AUDIT_COLUMNS, HEAD_COLUMNS, chained_record, head};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash, lock_order};
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::{
    AuditHead, AuditRecord, AuditStore, ChainedAuditRecord, NewAuditRecord, StoreResult,
};

use crate::SqliteStore;
use crate::convert::{db, savepoint};
use crate::cursor::all;

/// Appends `a` to its chain. Runs inside the caller's write transaction; SQLite's one
/// writer serialises appends, so reading the head and writing it back cannot race.
pub(crate) fn write_audit(conn: &Connection, a: &NewAuditRecord) -> StoreResult<()> {
    write_audits(conn, std::slice::from_ref(a))
}

/// Appends `records` in order, each to its chain. A chain's head is read once and
/// written once however many of its records the batch holds (the group commit of the
/// read path puts many records of one vault in one batch).
pub(crate) fn write_audits(conn: &Connection, records: &[NewAuditRecord]) -> StoreResult<()> {
    // The heads this batch read, advanced in memory and written back at the end.
    let mut heads: Vec<Head<'_>> = Vec::new();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO audit_log (id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(db)?;
    for record in records {
        let f = AuditFields::of_new(record);
        let chain = f.chain();
        let at = match heads.iter().position(|h| h.chain == chain) {
            Some(at) => at,
            None => {
                heads.push(read_head(conn, chain)?);
                heads.len() - 1
            }
        };
        let head = &mut heads[at];
        let hash = audit_hash(&head.hash, &f);
        insert
            .execute(params![
                f.id,
                f.vault_id,
                f.at_ms,
                f.key_id,
                f.account_id,
                f.action,
                f.target,
                f.outcome,
                f.ip,
                head.hash.as_slice(),
                hash.as_slice(),
            ])
            .map_err(db)?;
        head.length += 1;
        head.last_seq = conn.last_insert_rowid();
        head.hash = hash.to_vec();
    }
    let mut write_head = conn
        .prepare_cached(
            "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chain) DO UPDATE SET length = excluded.length, last_seq = excluded.last_seq, hash = excluded.hash",
        )
        .map_err(db)?;
    for h in &heads {
        write_head
            .execute(params![h.chain, h.length, h.last_seq, h.hash.as_slice()])
            .map_err(db)?;
    }
    Ok(())
}

/// A chain's head as a batch advances it.
struct Head<'a> {
    chain: &'a str,
    length: i64,
    last_seq: i64,
    hash: Vec<u8>,
}

/// A chain's stored head; the genesis hash for a new chain. (A damaged head is chained
/// from as it is: `audit verify` reports it, reads go on.)
fn read_head<'a>(conn: &Connection, chain: &'a str) -> StoreResult<Head<'a>> {
    let head = conn
        .prepare_cached("SELECT length, last_seq, hash FROM audit_heads WHERE chain = ?1")
        .and_then(|mut st| {
            st.query_row([chain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db)?;
    let (length, last_seq, hash) = head.unwrap_or((0, 0, GENESIS.to_vec()));
    Ok(Head {
        chain,
        length,
        last_seq,
        hash,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        lock_order(&mut records);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                write_audits(&tx, &records)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l
                 WHERE l.vault_id = ?1
                   AND (?2 IS NULL OR l.seq < coalesce((SELECT seq FROM audit_log WHERE id = ?2 AND vault_id = ?1), 0))
                 ORDER BY l.seq DESC LIMIT ?3",
                Columns::select(Dialect::Sqlite, &[&AUDIT_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        let before = before.map(|b| b.as_str().to_owned());
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, params![vault, before, limit], |c| {
                    chained_record(c).map(|r| r.record)
                })
            })
            .await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        self.pool.read(audit_heads).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        self.pool
            .read(|conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1",
                    )
                    .map_err(db)?;
                st.query_map([], |r| r.get(0))
                    .map_err(db)?
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(db)
            })
            .await
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>> {
        let chain = chain.to_owned();
        self.pool
            .read(move |conn| audit_chain(conn, &chain, after_seq, limit))
            .await
    }
}

/// Every chain's head, in chain order.
fn audit_heads(conn: &mut Connection) -> StoreResult<Vec<AuditHead>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM audit_heads h ORDER BY h.chain",
            Columns::select(Dialect::Sqlite, &[&HEAD_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    all(&mut st, [], |c| head(c))
}

/// One chain's records after `after_seq`, in order.
fn audit_chain(
    conn: &mut Connection,
    chain: &str,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<ChainedAuditRecord>> {
    let columns = Columns::select(Dialect::Sqlite, &[&AUDIT_COLUMNS]);
    // The server chain is the records without a vault; each form walks the index.
    let filter = if chain == SERVER_CHAIN {
        "l.vault_id IS NULL AND ?1 = ''"
    } else {
        "l.vault_id = ?1"
    };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM audit_log l
             WHERE {filter} AND l.seq > ?2
             ORDER BY l.seq LIMIT ?3"
        ))
        .map_err(db)?;
    all(&mut st, params![chain, after_seq, limit], |c| {
        chained_record(c)
    })
}
