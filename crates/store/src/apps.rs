//! Apps (a vault's OAuth client registrations) and a vault's own provider definitions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AppId, AppKey, Scopes, VaultId};

use crate::audit::records::NewAuditRecord;
use crate::error::StoreResult;
use crate::rows::{Columns, Cursor};
use crate::secret::Ciphertext;

/// A vault's own provider definition (`POST /v1/providers`), as its JSON spec.
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    pub vault_id: VaultId,
    pub key: String,
    pub spec: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStatus {
    Active,
    Blocked,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AppStatus::Active),
            "blocked" => Some(AppStatus::Blocked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: AppId,
    pub vault_id: VaultId,
    pub key: AppKey,
    pub provider_key: String,
    pub client_id: String,
    /// The client secret under the vault DEK.
    pub client_secret: Ciphertext,
    pub scopes: Scopes,
    pub status: AppStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AppUpdate {
    pub status: Option<AppStatus>,
    pub scopes: Option<Scopes>,
    pub client_id: Option<String>,
    pub client_secret: Option<Ciphertext>,
}

#[async_trait]
pub trait AppStore: Send + Sync {
    /// Adds a vault's custom provider; `StoreError::Conflict` when the key is taken.
    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>>;
    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>>;

    /// Adds an app; `StoreError::Conflict` when the key is taken in the vault.
    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()>;
    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>>;
    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>>;
    /// Applies `update`; returns the app as it now is, `None` when there is no such app.
    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>>;
    /// Deletes an app with no connections (`StoreError::Conflict` otherwise); false
    /// when there is no such app.
    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
}

/// The columns [`provider`] reads, from `providers p`.
pub const PROVIDER_COLUMNS: Columns = Columns(&["p.vault_id", "p.key", "p.spec", "p.created_at"]);

pub fn provider(c: &mut impl Cursor) -> StoreResult<ProviderRecord> {
    Ok(ProviderRecord {
        vault_id: c.parse("providers.vault_id", VaultId::parse)?,
        key: c.text("providers.key")?,
        spec: c.text("providers.spec")?,
        created_at: c.time("providers.created_at")?,
    })
}

/// The columns [`app`] reads, from `apps a`.
pub const APP_COLUMNS: Columns = Columns(&[
    "a.id",
    "a.vault_id",
    "a.key",
    "a.provider_key",
    "a.client_id",
    "a.client_secret",
    "a.scopes",
    "a.status",
    "a.created_at",
    "a.updated_at",
]);

pub fn app(c: &mut impl Cursor) -> StoreResult<AppRecord> {
    Ok(AppRecord {
        id: c.parse("apps.id", AppId::parse)?,
        vault_id: c.parse("apps.vault_id", VaultId::parse)?,
        key: c.parse("apps.key", AppKey::parse)?,
        provider_key: c.text("apps.provider_key")?,
        client_id: c.text("apps.client_id")?,
        client_secret: c.bytes("apps.client_secret")?.into(),
        scopes: c.scopes("apps.scopes")?,
        status: c.word("apps.status", AppStatus::parse)?,
        created_at: c.time("apps.created_at")?,
        updated_at: c.time("apps.updated_at")?,
    })
}
