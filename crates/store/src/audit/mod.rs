//! The audit log: its records ([`records`]), its hash chain ([`chain`]) and the store
//! methods that append and read it.

pub mod chain;
pub mod records;

use async_trait::async_trait;
use tokenwarden_domain::{AuditId, VaultId};

pub use chain::{
    AuditFields, ChainBreak, ChainVerifier, GENESIS, SERVER_CHAIN, audit_hash, lock_order,
};
use records::{AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord};

use crate::error::StoreResult;

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends a record to its chain (see [`chain`]): every method that takes a
    /// `NewAuditRecord` appends it the same way, in its own transaction. A batch of one.
    async fn append_audit(&self, record: NewAuditRecord) -> StoreResult<()> {
        self.append_audits(vec![record]).await
    }
    /// Appends many records in one transaction: all of them or none. Records of one
    /// chain keep the order given; chains are locked in [`lock_order`], so two processes
    /// appending batches that share chains cannot deadlock. This is the group commit of
    /// the read path: concurrent reads share one commit.
    async fn append_audits(&self, records: Vec<NewAuditRecord>) -> StoreResult<()>;
    /// Every audit chain's head.
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// Every chain that has records (vault ids, and `""` for records without a vault),
    /// whether or not its head is still there.
    async fn audit_chains(&self) -> StoreResult<Vec<String>>;
    /// One chain's records in order, with `seq` greater than `after_seq`, at most `limit`.
    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>>;
    /// Audit records of a vault, newest first, older than the record `before` when
    /// given (an unknown `before` yields nothing).
    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>>;
}
