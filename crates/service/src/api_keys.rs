//! API keys: authentication, creation, listing, revocation.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokenwarden_crypto::{ApiKey, DataKey};
use tokenwarden_domain::{ApiKeyId, ConnectionId, KeyScope, Name, Role, Roles, VaultId};
use tokenwarden_store::{Actor, ApiKeyAuthRecord, ApiKeyRecord, ConnectionForToken, KeyStore};
use tracing::{info, warn};

use crate::audit::{RequestContext, record};
use crate::{Caller, ServiceError, ServiceResult, Services};

/// Longest lifetime a key may be given: ten years.
pub const MAX_KEY_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
/// `last_used_at` is bookkeeping: written at most this often per key, so the read path
/// does not become a write path.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// A validated request for a new key.
#[derive(Debug, Clone)]
pub struct NewKeyRequest {
    pub name: Name,
    pub roles: Roles,
    pub scope: KeyScope,
    pub expires_in_secs: Option<u64>,
}

impl NewKeyRequest {
    pub fn new(
        name: Name,
        roles: Roles,
        scope: KeyScope,
        expires_in_secs: Option<u64>,
    ) -> ServiceResult<Self> {
        if let Some(s) = expires_in_secs
            && (s == 0 || s > MAX_KEY_LIFETIME_SECS)
        {
            return Err(ServiceError::InvalidRequest(format!(
                "expires_in must be between 1 and {MAX_KEY_LIFETIME_SECS} seconds"
            )));
        }
        Ok(Self {
            name,
            roles,
            scope,
            expires_in_secs,
        })
    }
}

/// A key just made; the only time its secret text exists outside its holder.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub id: ApiKeyId,
    pub key: ApiKey,
    pub name: Name,
    pub roles: Roles,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A caller allowed to read tokens, authenticated together with the connection its
/// request names ([`Services::authenticate_reader`]).
pub struct KeyAndConnection {
    caller: Caller,
    /// The connection id asked for and its row, read with the key.
    prefetched: Option<(ConnectionId, Option<ConnectionForToken>)>,
}

/// What the key's read found of the connection a request names.
pub(crate) enum Prefetched {
    /// Not read with the key (no id, or another one): read it now.
    NotRead,
    /// Read with the key: the key's vault has no such connection.
    Missing,
    Found(Box<ConnectionForToken>),
}

impl KeyAndConnection {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The row read with the key, if it was read for `id`.
    pub(crate) fn take_connection(self, id: &ConnectionId) -> (Caller, Prefetched) {
        let row = match self.prefetched {
            Some((read, Some(row))) if &read == id => Prefetched::Found(Box::new(row)),
            Some((read, None)) if &read == id => Prefetched::Missing,
            _ => Prefetched::NotRead,
        };
        (self.caller, row)
    }
}

impl std::fmt::Debug for KeyAndConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAndConnection")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Revoked,
}

impl ApiKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyStatus::Active => "active",
            ApiKeyStatus::Expired => "expired",
            ApiKeyStatus::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyView {
    pub record: ApiKeyRecord,
    pub status: ApiKeyStatus,
}

impl Services {
    /// Authenticates a bearer key. Every failure is [`ServiceError::Unauthorized`]:
    /// malformed, unknown, wrong secret, revoked and expired look the same.
    pub async fn authenticate(&self, presented: &str) -> ServiceResult<Caller> {
        let key = ApiKey::parse(presented).map_err(|_| ServiceError::Unauthorized)?;
        let row = self.keys_store().api_key_auth(key.id()).await?;
        self.admit(&key, row)
    }

    /// [`Services::authenticate`] of a key that must hold the `read` role (checked here,
    /// once), reading the connection the request names in the same query as the key
    /// (the token call's hot path). The connection row is used only once the key has
    /// passed, and only by [`Services::token`].
    pub async fn authenticate_reader(
        &self,
        presented: &str,
        connection: Option<&ConnectionId>,
    ) -> ServiceResult<KeyAndConnection> {
        let Some(id) = connection else {
            let caller = self.authenticate(presented).await?;
            caller.require(Role::Read)?;
            return Ok(KeyAndConnection {
                caller,
                prefetched: None,
            });
        };
        let key = ApiKey::parse(presented).map_err(|_| ServiceError::Unauthorized)?;
        let (row, connection) = match self
            .store
            .api_key_auth_with_connection(key.id(), id)
            .await?
        {
            Some((row, connection)) => (Some(row), connection),
            None => (None, None),
        };
        let caller = self.admit(&key, row)?;
        caller.require(Role::Read)?;
        Ok(KeyAndConnection {
            caller,
            prefetched: Some((id.clone(), connection)),
        })
    }

    /// Checks a presented key against its row.
    fn admit(&self, key: &ApiKey, row: Option<ApiKeyAuthRecord>) -> ServiceResult<Caller> {
        let Some(row) = row else {
            return Err(ServiceError::Unauthorized);
        };
        let (Some(hash), Some(slot)) = (row.lookup_hash, row.slot) else {
            return Err(ServiceError::Unauthorized);
        };
        let material = key.derive();
        if !material.lookup_hash.matches(hash.as_bytes()) {
            return Err(ServiceError::Unauthorized);
        }
        let now = self.clock.now();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(ServiceError::Unauthorized);
        }
        let stale = row
            .last_used_at
            .is_none_or(|t| now - t >= Duration::seconds(LAST_USED_GRANULARITY_SECS));
        if stale {
            let store: Arc<dyn KeyStore> = self.store.clone();
            let id = row.id.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(&id, now).await {
                    warn!(error = %e, api_key.id = %id, "could not record key use");
                }
            });
        }
        Ok(Caller {
            vault_id: row.vault_id,
            key_id: row.id,
            roles: row.roles,
            scope: row.scope,
            slot: slot.into_bytes(),
            kek: material.kek,
        })
    }

    /// An admin key creates another key, with equal or narrower roles and scope.
    pub async fn create_key(
        &self,
        caller: &Caller,
        request: NewKeyRequest,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedApiKey> {
        caller.require(Role::Admin)?;
        if !caller.roles.covers(request.roles) {
            return Err(ServiceError::Forbidden(
                "a key cannot create a key with roles it does not have".into(),
            ));
        }
        if !caller.scope.covers(&request.scope) {
            return Err(ServiceError::Forbidden(
                "a key cannot create a key with a wider scope than its own".into(),
            ));
        }
        let dek = caller.data_key()?;
        let actor = Actor::ApiKey(caller.key_id.clone());
        self.store_new_key(&caller.vault_id, &dek, request, actor, ctx)
            .await
    }

    pub(crate) async fn store_new_key(
        &self,
        vault_id: &VaultId,
        dek: &DataKey,
        request: NewKeyRequest,
        actor: Actor,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedApiKey> {
        let now = self.clock.now();
        let (row, created) = self.new_key(vault_id, dek, request, actor.clone(), now);
        let audit = record(
            ctx,
            now,
            Some(vault_id),
            actor,
            "api_key.create",
            Some(row.id.to_string()),
            "success",
        );
        self.keys_store().create_api_key(row, audit).await?;
        info!(vault.id = %vault_id, api_key.id = %created.id, roles = ?created.roles, "api key created");
        let roles: Vec<&str> = created.roles.iter().map(|r| r.as_str()).collect();
        self.emit(vec![crate::lifecycle::new_event(
            vault_id.clone(),
            tokenwarden_webhooks::EventType::ApiKeyCreated,
            serde_json::json!({ "api_key_id": created.id.as_str(), "name": created.name.as_str(), "roles": roles }),
            now,
        )])
        .await;
        Ok(created)
    }

    /// The vault's keys, never their secrets.
    pub async fn list_keys(&self, caller: &Caller) -> ServiceResult<Vec<ApiKeyView>> {
        caller.require(Role::Admin)?;
        let now = self.clock.now();
        let keys = self.keys_store().list_api_keys(&caller.vault_id).await?;
        // A scoped admin sees the keys it could have made: those within its scope.
        Ok(keys
            .into_iter()
            .filter(|record| caller.scope.covers(&record.scope))
            .map(|record| {
                let status = if record.revoked_at.is_some() {
                    ApiKeyStatus::Revoked
                } else if record.expires_at.is_some_and(|e| e <= now) {
                    ApiKeyStatus::Expired
                } else {
                    ApiKeyStatus::Active
                };
                ApiKeyView { record, status }
            })
            .collect())
    }

    /// Revokes a key: its slot is wiped, so it stops working at once.
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        id: &ApiKeyId,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        caller.require(Role::Admin)?;
        if !caller.scope.is_unlimited() {
            // A scoped admin may revoke only keys within its scope; others it cannot
            // see, so they answer as unknown.
            let keys = self.keys_store().list_api_keys(&caller.vault_id).await?;
            if !keys
                .iter()
                .any(|k| &k.id == id && caller.scope.covers(&k.scope))
            {
                return Err(ServiceError::NotFound("api key"));
            }
        }
        let now = self.clock.now();
        let audit = record(
            ctx,
            now,
            Some(&caller.vault_id),
            Actor::ApiKey(caller.key_id.clone()),
            "api_key.delete",
            Some(id.to_string()),
            "success",
        );
        if self
            .store
            .revoke_api_key(&caller.vault_id, id, now, audit)
            .await?
        {
            info!(vault.id = %caller.vault_id, api_key.id = %id, "api key revoked");
            self.emit(vec![crate::lifecycle::new_event(
                caller.vault_id.clone(),
                tokenwarden_webhooks::EventType::ApiKeyRevoked,
                serde_json::json!({ "api_key_id": id.as_str() }),
                now,
            )])
            .await;
            Ok(())
        } else {
            Err(ServiceError::NotFound("api key"))
        }
    }
}
