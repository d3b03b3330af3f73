//! The audit log's records: what a write appends, what a read returns, a chain's head.

use chrono::{DateTime, Utc};
use tokenwarden_domain::{AccountId, ApiKeyId, AuditId, VaultId};

use crate::error::StoreResult;
use crate::rows::{Columns, Cursor};

/// Who did something recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    ApiKey(ApiKeyId),
    Account(AccountId),
    Anonymous,
}

#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    pub id: AuditId,
    pub vault_id: Option<VaultId>,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// A stable dotted word: `api_key.create`, `login.failure`, ...
    pub action: &'static str,
    /// What was acted on (an id, never a secret).
    pub target: Option<String>,
    /// `success`, `denied`, `rate_limited`, `error`...
    pub outcome: &'static str,
    pub ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Monotonic position in the log (the paging cursor).
    pub seq: i64,
    pub id: AuditId,
    pub vault_id: Option<VaultId>,
    pub at: DateTime<Utc>,
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
}

/// A chain's last record as the heads table remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub chain: String,
    pub length: i64,
    pub last_seq: i64,
    pub hash: Vec<u8>,
}

/// An audit record with the hashes stored beside it.
#[derive(Debug, Clone)]
pub struct ChainedAuditRecord {
    pub record: AuditRecord,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The columns [`chained_record`] reads, from `audit_log l`.
pub const AUDIT_COLUMNS: Columns = Columns(&[
    "l.seq",
    "l.id",
    "l.vault_id",
    "l.at",
    "l.key_id",
    "l.account_id",
    "l.action",
    "l.target",
    "l.outcome",
    "l.ip",
    "l.prev_hash",
    "l.hash",
]);

pub fn chained_record(c: &mut impl Cursor) -> StoreResult<ChainedAuditRecord> {
    Ok(ChainedAuditRecord {
        record: AuditRecord {
            seq: c.int("audit_log.seq")?,
            id: c.parse("audit_log.id", AuditId::parse)?,
            vault_id: c.opt_parse("audit_log.vault_id", VaultId::parse)?,
            at: c.time("audit_log.at")?,
            key_id: c.opt_text("audit_log.key_id")?,
            account_id: c.opt_text("audit_log.account_id")?,
            action: c.text("audit_log.action")?,
            target: c.opt_text("audit_log.target")?,
            outcome: c.text("audit_log.outcome")?,
            ip: c.opt_text("audit_log.ip")?,
        },
        // Records written before the chain existed have no hashes until the upgrade
        // migration chains them; a missing one fails verification, not the read.
        prev_hash: c.opt_bytes("audit_log.prev_hash")?.unwrap_or_default(),
        hash: c.opt_bytes("audit_log.hash")?.unwrap_or_default(),
    })
}

/// The columns [`head`] reads, from `audit_heads h`.
pub const HEAD_COLUMNS: Columns = Columns(&["h.chain", "h.length", "h.last_seq", "h.hash"]);

pub fn head(c: &mut impl Cursor) -> StoreResult<AuditHead> {
    Ok(AuditHead {
        chain: c.text("audit_heads.chain")?,
        length: c.int("audit_heads.length")?,
        last_seq: c.int("audit_heads.last_seq")?,
        hash: c.bytes("audit_heads.hash")?,
    })
}
