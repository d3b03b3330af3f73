//! [`VaultStore`] on PostgreSQL.

use std::sync::LazyLock;

use async_trait::async_trait;
use tokenwarden_domain::{AccountId, VaultId};
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::vaults::{MEMBERSHIP_COLUMNS, VAULT_COLUMNS, membership, vault};
use tokenwarden_store::{KeySlot, NewVault, StoreResult, VaultRecord, VaultStore};

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, sql_error};
use crate::cursor::{all, one};
use crate::keys::insert_api_key;

#[async_trait]
impl VaultStore for PgStore {
    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let r = &v.vault;
        tx.execute(
            "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &r.id.as_str(),
                &r.name.as_str(),
                &r.managed,
                &i64::from(r.dek_key_id),
                &r.sealing_public_key,
                &r.sealing_private_key.as_bytes(),
                &r.master_slot.as_ref().map(KeySlot::as_bytes),
                &ms(r.created_at),
            ],
        )
        .await
        .map_err(sql_error("vault"))?;
        tx.execute(
            "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES ($1, $2, $3, $4)",
            &[&r.id.as_str(), &v.owner.as_str(), &v.owner_slot.as_bytes(), &ms(r.created_at)],
        )
        .await
        .map_err(sql_error("vault member"))?;
        insert_api_key(&tx, &v.first_key).await?;
        for a in &v.audit {
            write_audit(&tx, a).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE m.account_id = $1 ORDER BY v.created_at, v.id",
                Columns::select(Dialect::Postgres, &[&VAULT_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[&account.as_str()]).await?;
        all(&rows, |c| vault(c))
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v WHERE v.id = $1",
                Columns::select(Dialect::Postgres, &[&VAULT_COLUMNS])
            )
        });
        let row = self.pool.query_opt(&SQL, &[&id.as_str()]).await?;
        one(row, |c| vault(c))
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, KeySlot)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE v.id = $1 AND m.account_id = $2",
                Columns::select(Dialect::Postgres, MEMBERSHIP_COLUMNS)
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&vault.as_str(), &account.as_str()])
            .await?;
        one(row, |c| membership(c))
    }
}
