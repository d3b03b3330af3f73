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
        id: AuditId::generate(&mut rand::thread_rng()),
        vault_id: vault.cloned(),
        at,
        actor,
        action,
        target,
        outcome,
        ip: ctx.ip.clone(),
    }
}
