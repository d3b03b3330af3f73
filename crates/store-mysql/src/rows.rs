//! Column lists and row mappers shared by several queries.

use tokenwarden_domain::{AppId, AppKey, ConnectSessionId, ConnectionId, Name, Scopes, VaultId};
use tokenwarden_store::*;

use crate::convert::{Cols, opt_time, parsed, time};

pub(crate) fn scopes(column: &str, json: &str) -> Result<Scopes, StoreError> {
    let list: Vec<String> = parsed(column, serde_json::from_str(json))?;
    parsed(column, Scopes::parse(&list))
}

pub(crate) fn scopes_json(s: &Scopes) -> String {
    serde_json::to_string(s.as_slice()).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) const VAULT_COLUMNS: &str = "v.id, v.name, v.managed, v.dek_key_id, v.sealing_public_key, v.sealing_private_key, v.master_slot, v.created_at";

pub(crate) fn vault(c: &mut Cols) -> Result<VaultRecord, StoreError> {
    let id: String = c.get("vaults.id")?;
    let name: String = c.get("vaults.name")?;
    Ok(VaultRecord {
        id: parsed("vaults.id", VaultId::parse(&id))?,
        name: parsed("vaults.name", Name::parse(&name))?,
        managed: c.get("vaults.managed")?,
        dek_key_id: c.get("vaults.dek_key_id")?,
        sealing_public_key: c.get("vaults.sealing_public_key")?,
        sealing_private_key: c.get("vaults.sealing_private_key")?,
        master_slot: c.get("vaults.master_slot")?,
        created_at: time(c.get("vaults.created_at")?)?,
    })
}

pub(crate) const APP_COLUMNS: &str = "a.id, a.vault_id, a.`key`, a.provider_key, a.client_id, a.client_secret, a.scopes, a.status, a.created_at, a.updated_at";

pub(crate) fn app(c: &mut Cols) -> Result<AppRecord, StoreError> {
    let id: String = c.get("apps.id")?;
    let vault_id: String = c.get("apps.vault_id")?;
    let key: String = c.get("apps.key")?;
    let provider_key: String = c.get("apps.provider_key")?;
    let client_id: String = c.get("apps.client_id")?;
    let client_secret: Vec<u8> = c.get("apps.client_secret")?;
    let scope_json: String = c.get("apps.scopes")?;
    let status: String = c.get("apps.status")?;
    Ok(AppRecord {
        id: parsed("apps.id", AppId::parse(&id))?,
        vault_id: parsed("apps.vault_id", VaultId::parse(&vault_id))?,
        key: parsed("apps.key", AppKey::parse(&key))?,
        provider_key,
        client_id,
        client_secret,
        scopes: scopes("apps.scopes", &scope_json)?,
        status: AppStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt("apps.status".into()))?,
        created_at: time(c.get("apps.created_at")?)?,
        updated_at: time(c.get("apps.updated_at")?)?,
    })
}

pub(crate) const SESSION_COLUMNS: &str = "s.id, s.vault_id, s.app_id, s.connection_id, s.state_hash, s.secrets, s.scopes, s.return_to, s.status, s.error, s.created_by, s.created_at, s.expires_at, s.finished_at, s.link_hash, s.link_secret, s.link_expires_at, s.link_spent_at, s.binding_hash";

pub(crate) fn session(c: &mut Cols) -> Result<ConnectSessionRecord, StoreError> {
    let id: String = c.get("connect_sessions.id")?;
    let vault_id: String = c.get("connect_sessions.vault_id")?;
    let app_id: String = c.get("connect_sessions.app_id")?;
    let connection_id: String = c.get("connect_sessions.connection_id")?;
    let state_hash: Vec<u8> = c.get("connect_sessions.state_hash")?;
    let secrets: Vec<u8> = c.get("connect_sessions.secrets")?;
    let scope_json: String = c.get("connect_sessions.scopes")?;
    let return_to: Option<String> = c.get("connect_sessions.return_to")?;
    let status: String = c.get("connect_sessions.status")?;
    let error: Option<String> = c.get("connect_sessions.error")?;
    let created_by: String = c.get("connect_sessions.created_by")?;
    let created_at: i64 = c.get("connect_sessions.created_at")?;
    let expires_at: i64 = c.get("connect_sessions.expires_at")?;
    let finished_at: Option<i64> = c.get("connect_sessions.finished_at")?;
    let link_hash: Option<Vec<u8>> = c.get("connect_sessions.link_hash")?;
    let link_secret: Option<Vec<u8>> = c.get("connect_sessions.link_secret")?;
    let link_expires_at: Option<i64> = c.get("connect_sessions.link_expires_at")?;
    let link_spent_at: Option<i64> = c.get("connect_sessions.link_spent_at")?;
    let binding_hash: Option<Vec<u8>> = c.get("connect_sessions.binding_hash")?;
    let link = match (link_hash, link_secret, link_expires_at) {
        (Some(hash), Some(sealed_url), Some(expires_at)) => Some(ConnectLinkRecord {
            hash,
            sealed_url,
            expires_at: time(expires_at)?,
            spent_at: opt_time(link_spent_at)?,
            binding_hash,
        }),
        (None, None, None) => None,
        _ => return Err(StoreError::Corrupt("connect_sessions.link_*".into())),
    };
    Ok(ConnectSessionRecord {
        id: parsed("connect_sessions.id", ConnectSessionId::parse(&id))?,
        vault_id: parsed("connect_sessions.vault_id", VaultId::parse(&vault_id))?,
        app_id: parsed("connect_sessions.app_id", AppId::parse(&app_id))?,
        connection_id: parsed(
            "connect_sessions.connection_id",
            ConnectionId::parse(&connection_id),
        )?,
        state_hash,
        secrets,
        scopes: scopes("connect_sessions.scopes", &scope_json)?,
        return_to,
        status: ConnectStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt("connect_sessions.status".into()))?,
        error,
        created_by,
        created_at: time(created_at)?,
        expires_at: time(expires_at)?,
        finished_at: opt_time(finished_at)?,
        link,
    })
}

pub(crate) const CONNECTION_COLUMNS: &str = "c.vault_id, c.id, c.app_id, a.`key`, a.provider_key, c.status, c.scopes, c.token_set, c.token_format, c.expires_at, c.has_refresh, c.version, c.lease_owner, c.lease_until, c.created_at, c.refreshed_at";

pub(crate) fn connection(c: &mut Cols) -> Result<ConnectionRecord, StoreError> {
    let vault_id: String = c.get("connections.vault_id")?;
    let id: String = c.get("connections.id")?;
    let app_id: String = c.get("connections.app_id")?;
    let app_key: String = c.get("apps.key")?;
    let provider_key: String = c.get("apps.provider_key")?;
    let status: String = c.get("connections.status")?;
    let scope_json: String = c.get("connections.scopes")?;
    let token_set: Vec<u8> = c.get("connections.token_set")?;
    let token_format: i64 = c.get("connections.token_format")?;
    Ok(ConnectionRecord {
        vault_id: parsed("connections.vault_id", VaultId::parse(&vault_id))?,
        id: parsed("connections.id", ConnectionId::parse(&id))?,
        app_id: parsed("connections.app_id", AppId::parse(&app_id))?,
        app_key: parsed("apps.key", AppKey::parse(&app_key))?,
        provider_key,
        status: ConnectionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt("connections.status".into()))?,
        scopes: scopes("connections.scopes", &scope_json)?,
        token_set,
        token_format: TokenFormat::from_i64(token_format)
            .ok_or_else(|| StoreError::Corrupt("connections.token_format".into()))?,
        expires_at: opt_time(c.get("connections.expires_at")?)?,
        has_refresh: c.get("connections.has_refresh")?,
        version: c.get("connections.version")?,
        lease_owner: c.get("connections.lease_owner")?,
        lease_until: opt_time(c.get("connections.lease_until")?)?,
        created_at: time(c.get("connections.created_at")?)?,
        refreshed_at: opt_time(c.get("connections.refreshed_at")?)?,
    })
}
