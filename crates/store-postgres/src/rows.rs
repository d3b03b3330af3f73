//! Row mappers: the same columns, in the same order, as the SQLite backend reads.

use tokenwarden_domain::{
    AccountId, ApiKeyId, AppId, AppKey, ConnectSessionId, ConnectionId, KeyScope, Name, Roles,
    Scopes, VaultId,
};
use tokenwarden_store::*;
use tokio_postgres::Row;

use crate::convert::{get, opt_time, parsed, time};

pub(crate) fn scopes(column: &str, json: &str) -> Result<Scopes, StoreError> {
    let list: Vec<String> = parsed(column, serde_json::from_str(json))?;
    parsed(column, Scopes::parse(&list))
}

pub(crate) fn scopes_json(s: &Scopes) -> String {
    serde_json::to_string(s.as_slice()).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn key_scope(json: &str) -> Result<KeyScope, StoreError> {
    parsed("api_keys.scope", serde_json::from_str(json))
}

pub(crate) fn dek_key_id(v: i64) -> Result<u32, StoreError> {
    parsed("vaults.dek_key_id", u32::try_from(v))
}

pub(crate) const VAULT_COLUMNS: &str = "v.id, v.name, v.managed, v.dek_key_id, v.sealing_public_key, v.sealing_private_key, v.master_slot, v.created_at";

pub(crate) fn vault(row: &Row) -> Result<VaultRecord, StoreError> {
    Ok(VaultRecord {
        id: parsed("vaults.id", VaultId::parse(get(row, 0)?))?,
        name: parsed("vaults.name", Name::parse(get(row, 1)?))?,
        managed: get(row, 2)?,
        dek_key_id: dek_key_id(get(row, 3)?)?,
        sealing_public_key: get(row, 4)?,
        sealing_private_key: get(row, 5)?,
        master_slot: get(row, 6)?,
        created_at: time(get(row, 7)?)?,
    })
}

pub(crate) fn account(row: &Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: parsed("accounts.id", AccountId::parse(get(row, 0)?))?,
        email: parsed(
            "accounts.email",
            tokenwarden_domain::Email::parse(get(row, 1)?),
        )?,
        kdf_params: get(row, 2)?,
        kdf_salt: get(row, 3)?,
        verifier: get(row, 4)?,
        created_at: time(get(row, 5)?)?,
    })
}

pub(crate) fn api_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: parsed("api_keys.id", ApiKeyId::parse(get(row, 0)?))?,
        vault_id: parsed("api_keys.vault_id", VaultId::parse(get(row, 1)?))?,
        name: parsed("api_keys.name", Name::parse(get(row, 2)?))?,
        roles: parsed("api_keys.roles", Roles::parse_list(get(row, 3)?))?,
        scope: key_scope(get(row, 4)?)?,
        created_at: time(get(row, 5)?)?,
        expires_at: opt_time(get(row, 6)?)?,
        revoked_at: opt_time(get(row, 7)?)?,
        last_used_at: opt_time(get(row, 8)?)?,
    })
}

pub(crate) const APP_COLUMNS: &str = "a.id, a.vault_id, a.key, a.provider_key, a.client_id, a.client_secret, a.scopes, a.status, a.created_at, a.updated_at";
pub(crate) const APP_COLUMN_COUNT: usize = 10;

/// Reads an app from `row` starting at column `at`.
pub(crate) fn app(row: &Row, at: usize) -> Result<AppRecord, StoreError> {
    Ok(AppRecord {
        id: parsed("apps.id", AppId::parse(get(row, at)?))?,
        vault_id: parsed("apps.vault_id", VaultId::parse(get(row, at + 1)?))?,
        key: parsed("apps.key", AppKey::parse(get(row, at + 2)?))?,
        provider_key: get(row, at + 3)?,
        client_id: get(row, at + 4)?,
        client_secret: get(row, at + 5)?,
        scopes: scopes("apps.scopes", get(row, at + 6)?)?,
        status: AppStatus::parse(get(row, at + 7)?)
            .ok_or_else(|| StoreError::Corrupt("apps.status".into()))?,
        created_at: time(get(row, at + 8)?)?,
        updated_at: time(get(row, at + 9)?)?,
    })
}

pub(crate) const SESSION_COLUMNS: &str = "s.id, s.vault_id, s.app_id, s.connection_id, s.state_hash, s.secrets, s.scopes, s.return_to, s.status, s.error, s.created_by, s.created_at, s.expires_at, s.finished_at, s.link_hash, s.link_secret, s.link_expires_at, s.link_spent_at, s.binding_hash";
pub(crate) const SESSION_COLUMN_COUNT: usize = 19;

pub(crate) fn session(row: &Row, at: usize) -> Result<ConnectSessionRecord, StoreError> {
    let link_hash: Option<Vec<u8>> = get(row, at + 14)?;
    let link_secret: Option<Vec<u8>> = get(row, at + 15)?;
    let link_expires_at: Option<i64> = get(row, at + 16)?;
    let link = match (link_hash, link_secret, link_expires_at) {
        (Some(hash), Some(sealed_url), Some(expires_at)) => Some(ConnectLinkRecord {
            hash,
            sealed_url,
            expires_at: time(expires_at)?,
            spent_at: opt_time(get(row, at + 17)?)?,
            binding_hash: get(row, at + 18)?,
        }),
        (None, None, None) => None,
        _ => return Err(StoreError::Corrupt("connect_sessions.link_*".into())),
    };
    Ok(ConnectSessionRecord {
        id: parsed(
            "connect_sessions.id",
            ConnectSessionId::parse(get(row, at)?),
        )?,
        vault_id: parsed(
            "connect_sessions.vault_id",
            VaultId::parse(get(row, at + 1)?),
        )?,
        app_id: parsed("connect_sessions.app_id", AppId::parse(get(row, at + 2)?))?,
        connection_id: parsed(
            "connect_sessions.connection_id",
            ConnectionId::parse(get(row, at + 3)?),
        )?,
        state_hash: get(row, at + 4)?,
        secrets: get(row, at + 5)?,
        scopes: scopes("connect_sessions.scopes", get(row, at + 6)?)?,
        return_to: get(row, at + 7)?,
        status: ConnectStatus::parse(get(row, at + 8)?)
            .ok_or_else(|| StoreError::Corrupt("connect_sessions.status".into()))?,
        error: get(row, at + 9)?,
        created_by: get(row, at + 10)?,
        created_at: time(get(row, at + 11)?)?,
        expires_at: time(get(row, at + 12)?)?,
        finished_at: opt_time(get(row, at + 13)?)?,
        link,
    })
}

pub(crate) const CONNECTION_COLUMNS: &str = "c.vault_id, c.id, c.app_id, a.key, a.provider_key, c.status, c.scopes, c.token_set, c.token_format, c.expires_at, c.has_refresh, c.version, c.lease_owner, c.lease_until, c.created_at, c.refreshed_at";
pub(crate) const CONNECTION_COLUMN_COUNT: usize = 16;

pub(crate) fn connection(row: &Row, at: usize) -> Result<ConnectionRecord, StoreError> {
    Ok(ConnectionRecord {
        vault_id: parsed("connections.vault_id", VaultId::parse(get(row, at)?))?,
        id: parsed("connections.id", ConnectionId::parse(get(row, at + 1)?))?,
        app_id: parsed("connections.app_id", AppId::parse(get(row, at + 2)?))?,
        app_key: parsed("apps.key", AppKey::parse(get(row, at + 3)?))?,
        provider_key: get(row, at + 4)?,
        status: ConnectionStatus::parse(get(row, at + 5)?)
            .ok_or_else(|| StoreError::Corrupt("connections.status".into()))?,
        scopes: scopes("connections.scopes", get(row, at + 6)?)?,
        token_set: get(row, at + 7)?,
        token_format: TokenFormat::from_i64(get(row, at + 8)?)
            .ok_or_else(|| StoreError::Corrupt("connections.token_format".into()))?,
        expires_at: opt_time(get(row, at + 9)?)?,
        has_refresh: get(row, at + 10)?,
        version: get(row, at + 11)?,
        lease_owner: get(row, at + 12)?,
        lease_until: opt_time(get(row, at + 13)?)?,
        created_at: time(get(row, at + 14)?)?,
        refreshed_at: opt_time(get(row, at + 15)?)?,
    })
}
