//! Building audit records.

use chrono::{DateTime, Utc};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::{Actor, NewAuditRecord};

/// What the HTTP layer knows about a request that the audit log wants.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
}

pub(crate) fn record(
    ctx: &RequestContext,
    at: DateTime<Utc>,
    vault: Option<&VaultId>,
    actor: Actor,
    action: &'static str,
    target: Option<String>,
    outcome: &'static str,
) -> NewAuditRecord {
    NewAuditRecord {
        id: AuditId::generate_at(at.timestamp_millis(), &mut rand::thread_rng()),
        vault_id: vault.cloned(),
        at,
        actor,
        action,
        target,
        outcome,
        ip: ctx.ip.clone(),
    }
}

/// The most records one page of `GET /v1/audit` returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

impl crate::Services {
    /// A vault's audit records, newest first. Only an unscoped admin key reads them: the
    /// log covers every app and connection of the vault.
    pub async fn list_audit(
        &self,
        caller: &crate::Caller,
        limit: u32,
        before: Option<&AuditId>,
    ) -> crate::ServiceResult<Vec<tokenwarden_store::AuditRecord>> {
        caller.require(tokenwarden_domain::Role::Admin)?;
        if !caller.scope.is_unlimited() {
            return Err(crate::ServiceError::Forbidden(
                "a scoped API key cannot read the vault's whole audit log".into(),
            ));
        }
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(crate::ServiceError::InvalidRequest(format!(
                "limit: must be between 1 and {MAX_AUDIT_PAGE}"
            )));
        }
        Ok(self
            .store
            .list_audit(&caller.vault_id, limit, before)
            .await?)
    }
}

/// What [`verify_audit`] found in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The vault id, or empty for the server chain.
    pub chain: String,
    pub records: i64,
}

/// Why [`verify_audit`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditVerifyError {
    #[error("audit chain broken: {0}")]
    Broken(tokenwarden_store::audit::ChainBreak),
    #[error("could not read the audit log: {0}")]
    Store(#[from] tokenwarden_store::StoreError),
}

/// Checks every audit chain from its first record to its head: each record's hash, its
/// link to the one before, and the head's length and hash. Stops at the first break.
pub async fn verify_audit(
    store: &dyn tokenwarden_store::AuditStore,
) -> Result<Vec<ChainReport>, AuditVerifyError> {
    use tokenwarden_store::audit::ChainVerifier;
    const PAGE: u32 = 1000;
    let heads = store.audit_heads().await?;
    let mut chains: Vec<String> = heads.iter().map(|h| h.chain.clone()).collect();
    // A chain whose head was deleted still has records: find those chains too.
    for vault_chain in store.audit_chains().await? {
        if !chains.contains(&vault_chain) {
            chains.push(vault_chain);
        }
    }
    chains.sort();
    let mut reports = Vec::with_capacity(chains.len());
    for chain in chains {
        let mut verifier = ChainVerifier::new(&chain);
        loop {
            let page = store.audit_chain(&chain, verifier.last_seq(), PAGE).await?;
            for record in &page {
                verifier.check(record).map_err(AuditVerifyError::Broken)?;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        let head = heads.iter().find(|h| h.chain == chain);
        let records = verifier.finish(head).map_err(AuditVerifyError::Broken)?;
        reports.push(ChainReport { chain, records });
    }
    Ok(reports)
}
