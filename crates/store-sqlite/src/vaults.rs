//! [`VaultStore`] on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::params;
use tokenwarden_domain::{AccountId, VaultId};
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::vaults::{MEMBERSHIP_COLUMNS, VAULT_COLUMNS, membership, vault};
use tokenwarden_store::{KeySlot, NewVault, StoreResult, VaultRecord, VaultStore};

use crate::SqliteStore;
use crate::audit::write_audits;
use crate::convert::{db, ms, savepoint, sql_error};
use crate::cursor::{all, one};
use crate::keys::insert_api_key;

#[async_trait]
impl VaultStore for SqliteStore {
    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let r = &v.vault;
                tx.execute(
                    "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        r.id.as_str(),
                        r.name.as_str(),
                        r.managed,
                        r.dek_key_id,
                        r.sealing_public_key,
                        r.sealing_private_key.as_bytes(),
                        r.master_slot.as_ref().map(KeySlot::as_bytes),
                        ms(r.created_at)
                    ],
                )
                .map_err(sql_error("vault"))?;
                tx.execute(
                    "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![r.id.as_str(), v.owner.as_str(), v.owner_slot.as_bytes(), ms(r.created_at)],
                )
                .map_err(sql_error("vault member"))?;
                insert_api_key(&tx, &v.first_key)?;
                write_audits(&tx, &v.audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE m.account_id = ?1 ORDER BY v.created_at, v.id",
                Columns::select(Dialect::Sqlite, &[&VAULT_COLUMNS])
            )
        });
        let account = account.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, [account], |c| vault(c))
            })
            .await
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v WHERE v.id = ?1",
                Columns::select(Dialect::Sqlite, &[&VAULT_COLUMNS])
            )
        });
        let id = id.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [id], |c| vault(c))
            })
            .await
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, KeySlot)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE v.id = ?1 AND m.account_id = ?2",
                Columns::select(Dialect::Sqlite, MEMBERSHIP_COLUMNS)
            )
        });
        let vault = vault.as_str().to_owned();
        let account = account.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [vault, account], |c| membership(c))
            })
            .await
    }
}
