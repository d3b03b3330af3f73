//! Vaults: creation (with the whole key hierarchy) and listing.

use chrono::{DateTime, Utc};
use tokenwarden_crypto::{ApiKey, Binding, DataKey, KeyId, Purpose, SealingPrivateKey};
use tokenwarden_domain::{Name, Roles, VaultId};
use tokenwarden_store::{Actor, KeySlot, NewApiKey, NewVault, VaultRecord};
use tracing::info;

use crate::api_keys::{CreatedApiKey, NewKeyRequest};
use crate::audit::{RequestContext, record};
use crate::{AccountSession, ServiceError, ServiceResult, Services};

/// The first generation of every vault key.
const FIRST_KEY_ID: KeyId = KeyId(1);

#[derive(Debug, Clone)]
pub struct VaultView {
    pub id: VaultId,
    pub name: Name,
    pub managed: bool,
    pub created_at: DateTime<Utc>,
}

impl From<VaultRecord> for VaultView {
    fn from(v: VaultRecord) -> Self {
        Self {
            id: v.id,
            name: v.name,
            managed: v.managed,
            created_at: v.created_at,
        }
    }
}

#[derive(Debug)]
pub struct CreatedVault {
    pub vault: VaultView,
    pub api_key: CreatedApiKey,
}

impl Services {
    /// Creates a vault: a fresh DEK, the sealing key pair (private half under the DEK),
    /// the owner's password slot, a master slot for managed vaults, and a first admin
    /// key, all in one transaction.
    pub async fn create_vault(
        &self,
        session: &AccountSession,
        name: Name,
        managed: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedVault> {
        let master = match (managed, &self.master_key) {
            (true, None) => return Err(ServiceError::ManagedUnavailable),
            (true, Some(m)) => Some(m.clone()),
            (false, _) => None,
        };
        let now = self.clock.now();
        let vault_id = VaultId::generate(&mut rand::thread_rng());
        let dek = DataKey::generate(FIRST_KEY_ID);

        let (sealing_private, sealing_public) = SealingPrivateKey::generate(FIRST_KEY_ID);
        let sealing_private_key = dek.encrypt(
            &Binding::new(Purpose::SealingPrivateKey, &vault_id, vault_id.as_str()),
            &sealing_private.to_bytes(),
        );
        let master_slot = master.map(|m| {
            m.kek().wrap(
                &dek,
                &Binding::new(Purpose::MasterSlot, &vault_id, vault_id.as_str()),
            )
        });
        let owner_slot = session.kek.wrap(
            &dek,
            &Binding::new(
                Purpose::PasswordSlot,
                &vault_id,
                session.account_id.as_str(),
            ),
        );
        let request = NewKeyRequest {
            name: Name::parse("admin").map_err(ServiceError::invalid)?,
            roles: Roles::admin(),
            scope: Default::default(),
            expires_in_secs: None,
        };
        let actor = Actor::Account(session.account_id.clone());
        let (first_key, created) = self.new_key(&vault_id, &dek, request, actor.clone(), now);

        let vault = VaultRecord {
            id: vault_id.clone(),
            name,
            managed,
            dek_key_id: dek.id().0,
            sealing_public_key: sealing_public.to_bytes(),
            sealing_private_key: sealing_private_key.into(),
            master_slot: master_slot.map(KeySlot::from),
            created_at: now,
        };
        let audit = vec![
            record(
                ctx,
                now,
                Some(&vault_id),
                actor.clone(),
                "vault.create",
                Some(vault_id.to_string()),
                "success",
            ),
            record(
                ctx,
                now,
                Some(&vault_id),
                actor,
                "api_key.create",
                Some(first_key.id.to_string()),
                "success",
            ),
        ];
        self.vaults_store()
            .create_vault(NewVault {
                vault: vault.clone(),
                owner: session.account_id.clone(),
                owner_slot: owner_slot.into(),
                first_key,
                audit,
            })
            .await?;
        info!(vault.id = %vault_id, account.id = %session.account_id, managed, "vault created");
        Ok(CreatedVault {
            vault: vault.into(),
            api_key: created,
        })
    }

    /// The vaults an account is a member of.
    pub async fn list_vaults(&self, session: &AccountSession) -> ServiceResult<Vec<VaultView>> {
        let vaults = self
            .vaults_store()
            .vaults_of_account(&session.account_id)
            .await?;
        Ok(vaults.into_iter().map(VaultView::from).collect())
    }

    /// A member issues an API key with their password
    /// (`POST /v1/vaults/{vault_id}/api-keys`).
    pub async fn create_key_as_member(
        &self,
        session: &AccountSession,
        vault_id: &VaultId,
        request: NewKeyRequest,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedApiKey> {
        let (_, slot) = self
            .store
            .vault_membership(vault_id, &session.account_id)
            .await?
            .ok_or(ServiceError::NotFound("vault"))?;
        let dek = session.kek.unwrap(
            &Binding::new(Purpose::PasswordSlot, vault_id, session.account_id.as_str()),
            slot.as_bytes(),
        )?;
        let actor = Actor::Account(session.account_id.clone());
        self.store_new_key(vault_id, &dek, request, actor, ctx)
            .await
    }

    pub(crate) fn generate_key_parts(
        vault_id: &VaultId,
        dek: &DataKey,
    ) -> (ApiKey, Vec<u8>, Vec<u8>) {
        let key = ApiKey::generate();
        let material = key.derive();
        let slot = material.kek.wrap(
            dek,
            &Binding::new(Purpose::ApiKeySlot, vault_id, key.id().as_str()),
        );
        (key, material.lookup_hash.as_bytes().to_vec(), slot)
    }

    pub(crate) fn new_key(
        &self,
        vault_id: &VaultId,
        dek: &DataKey,
        request: NewKeyRequest,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> (NewApiKey, CreatedApiKey) {
        let (key, lookup_hash, slot) = Self::generate_key_parts(vault_id, dek);
        let expires_at = request
            .expires_in_secs
            .map(|s| now + chrono::Duration::seconds(s as i64));
        let created_by = match &actor {
            Actor::ApiKey(k) => k.to_string(),
            Actor::Account(a) => a.to_string(),
            Actor::Anonymous => String::new(),
        };
        let row = NewApiKey {
            id: key.id().clone(),
            vault_id: vault_id.clone(),
            name: request.name.clone(),
            roles: request.roles,
            scope: request.scope.clone(),
            lookup_hash: lookup_hash.into(),
            slot: slot.into(),
            created_at: now,
            expires_at,
            created_by,
        };
        let created = CreatedApiKey {
            id: key.id().clone(),
            name: request.name,
            roles: request.roles,
            scope: request.scope,
            expires_at,
            created_at: now,
            key,
        };
        (row, created)
    }
}
