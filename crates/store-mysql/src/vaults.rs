//! [`VaultStore`] on MySQL.

use std::sync::LazyLock;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use tokenwarden_domain::{AccountId, VaultId};
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::vaults::{MEMBERSHIP_COLUMNS, VAULT_COLUMNS, membership, vault};
use tokenwarden_store::{KeySlot, NewVault, StoreResult, VaultRecord, VaultStore};

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::convert::{ms, params, sql_error};
use crate::cursor::{all, one};
use crate::keys::insert_api_key;
use crate::pool::write_tx;

#[async_trait]
impl VaultStore for MysqlStore {
    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        write_tx!(self, tx => {
            let r = &v.vault;
            tx.exec_drop(
                "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    r.id.as_str(),
                    r.name.as_str(),
                    r.managed,
                    r.dek_key_id,
                    r.sealing_public_key.as_slice(),
                    r.sealing_private_key.as_bytes(),
                    r.master_slot.as_ref().map(KeySlot::as_bytes),
                    ms(r.created_at)
                ],
            )
            .await
            .map_err(sql_error("vault"))?;
            tx.exec_drop(
                "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES (?, ?, ?, ?)",
                params![r.id.as_str(), v.owner.as_str(), v.owner_slot.as_bytes(), ms(r.created_at)],
            )
            .await
            .map_err(sql_error("vault member"))?;
            insert_api_key(&mut tx, &v.first_key).await?;
            for a in &v.audit {
                write_audit(&mut tx, a).await?;
            }
        })
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE m.account_id = ? ORDER BY v.created_at, v.id",
                Columns::select(Dialect::Mysql, &[&VAULT_COLUMNS])
            )
        });
        all(
            &mut self.conn().await?,
            &SQL,
            params![account.as_str()],
            vault,
        )
        .await
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v WHERE v.id = ?",
                Columns::select(Dialect::Mysql, &[&VAULT_COLUMNS])
            )
        });
        one(&mut self.conn().await?, &SQL, params![id.as_str()], vault).await
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, KeySlot)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE v.id = ? AND m.account_id = ?",
                Columns::select(Dialect::Mysql, MEMBERSHIP_COLUMNS)
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str(), account.as_str()],
            membership,
        )
        .await
    }
}
