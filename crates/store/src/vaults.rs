//! Vaults and their members' password slots.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AccountId, Name, VaultId};

use crate::audit::records::NewAuditRecord;
use crate::error::StoreResult;
use crate::keys::NewApiKey;
use crate::rows::{Columns, Cursor};
use crate::secret::{Ciphertext, KeySlot};

#[derive(Debug, Clone)]
pub struct VaultRecord {
    pub id: VaultId,
    pub name: Name,
    pub managed: bool,
    /// Generation of the vault's current DEK.
    pub dek_key_id: u32,
    pub sealing_public_key: Vec<u8>,
    /// The X25519 private key, encrypted under the DEK.
    pub sealing_private_key: Ciphertext,
    /// The DEK under the master key (managed vaults only).
    pub master_slot: Option<KeySlot>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewVault {
    pub vault: VaultRecord,
    pub owner: AccountId,
    /// The DEK under the owner's password KEK.
    pub owner_slot: KeySlot,
    pub first_key: NewApiKey,
    pub audit: Vec<NewAuditRecord>,
}

#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Creates a vault with its owner's password slot and its first admin key.
    async fn create_vault(&self, vault: NewVault) -> StoreResult<()>;
    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>>;
    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>>;
    /// The vault and `account`'s password slot for it, if the account is a member.
    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, KeySlot)>>;
}

/// The columns [`vault`] reads, from `vaults v`.
pub const VAULT_COLUMNS: Columns = Columns(&[
    "v.id",
    "v.name",
    "v.managed",
    "v.dek_key_id",
    "v.sealing_public_key",
    "v.sealing_private_key",
    "v.master_slot",
    "v.created_at",
]);

/// [`VAULT_COLUMNS`] and a member's slot (`vault_members m`).
pub const MEMBERSHIP_COLUMNS: &[&Columns] = &[&VAULT_COLUMNS, &Columns(&["m.slot"])];

pub fn vault(c: &mut impl Cursor) -> StoreResult<VaultRecord> {
    Ok(VaultRecord {
        id: c.parse("vaults.id", VaultId::parse)?,
        name: c.parse("vaults.name", Name::parse)?,
        managed: c.flag("vaults.managed")?,
        dek_key_id: c.small("vaults.dek_key_id")?,
        sealing_public_key: c.bytes("vaults.sealing_public_key")?,
        sealing_private_key: c.bytes("vaults.sealing_private_key")?.into(),
        master_slot: c.opt_bytes("vaults.master_slot")?.map(KeySlot::from),
        created_at: c.time("vaults.created_at")?,
    })
}

pub fn membership(c: &mut impl Cursor) -> StoreResult<(VaultRecord, KeySlot)> {
    Ok((vault(c)?, c.bytes("vault_members.slot")?.into()))
}
