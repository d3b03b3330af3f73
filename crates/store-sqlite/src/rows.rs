//! Row mappers for the OAuth tables.

use rusqlite::Row;
use tokenwarden_domain::{AppId, AppKey, ConnectSessionId, ConnectionId, Scopes, VaultId};
use tokenwarden_store::*;

use crate::convert::{opt_time, parsed, time};

pub(crate) fn scopes(column: &str, json: &str) -> Result<Scopes, StoreError> {
    let list: Vec<String> = parsed(column, serde_json::from_str(json))?;
    parsed(column, Scopes::parse(&list))
}

pub(crate) fn scopes_json(s: &Scopes) -> String {
    serde_json::to_string(s.as_slice()).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) const APP_COLUMNS: &str = "a.id, a.vault_id, a.key, a.provider_key, a.client_id, a.client_secret, a.scopes, a.status, a.created_at, a.updated_at";
pub(crate) const APP_COLUMN_COUNT: usize = 10;

/// Reads an app from `row` starting at column `at`.
pub(crate) fn app(row: &Row<'_>, at: usize) -> rusqlite::Result<Result<AppRecord, StoreError>> {
    let id: String = row.get(at)?;
    let vault_id: String = row.get(at + 1)?;
    let key: String = row.get(at + 2)?;
    let provider_key: String = row.get(at + 3)?;
    let client_id: String = row.get(at + 4)?;
    let client_secret: Vec<u8> = row.get(at + 5)?;
    let scope_json: String = row.get(at + 6)?;
    let status: String = row.get(at + 7)?;
    let created_at: i64 = row.get(at + 8)?;
    let updated_at: i64 = row.get(at + 9)?;
    Ok((|| {
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
            created_at: time(created_at)?,
            updated_at: time(updated_at)?,
        })
    })())
}

pub(crate) const SESSION_COLUMNS: &str = "s.id, s.vault_id, s.app_id, s.connection_id, s.state_hash, s.secrets, s.scopes, s.return_to, s.status, s.error, s.created_by, s.created_at, s.expires_at, s.finished_at, s.link_hash, s.link_secret, s.link_expires_at, s.link_spent_at, s.binding_hash";
pub(crate) const SESSION_COLUMN_COUNT: usize = 19;

pub(crate) fn session(
    row: &Row<'_>,
    at: usize,
) -> rusqlite::Result<Result<ConnectSessionRecord, StoreError>> {
    let id: String = row.get(at)?;
    let vault_id: String = row.get(at + 1)?;
    let app_id: String = row.get(at + 2)?;
    let connection_id: String = row.get(at + 3)?;
    let state_hash: Vec<u8> = row.get(at + 4)?;
    let secrets: Vec<u8> = row.get(at + 5)?;
    let scope_json: String = row.get(at + 6)?;
    let return_to: Option<String> = row.get(at + 7)?;
    let status: String = row.get(at + 8)?;
    let error: Option<String> = row.get(at + 9)?;
    let created_by: String = row.get(at + 10)?;
    let created_at: i64 = row.get(at + 11)?;
    let expires_at: i64 = row.get(at + 12)?;
    let finished_at: Option<i64> = row.get(at + 13)?;
    let link_hash: Option<Vec<u8>> = row.get(at + 14)?;
    let link_secret: Option<Vec<u8>> = row.get(at + 15)?;
    let link_expires_at: Option<i64> = row.get(at + 16)?;
    let link_spent_at: Option<i64> = row.get(at + 17)?;
    let binding_hash: Option<Vec<u8>> = row.get(at + 18)?;
    Ok((|| {
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
    })())
}

pub(crate) const CONNECTION_COLUMNS: &str = "c.vault_id, c.id, c.app_id, a.key, a.provider_key, c.status, c.scopes, c.token_set, c.token_format, c.expires_at, c.has_refresh, c.version, c.lease_owner, c.lease_until, c.created_at, c.refreshed_at";
pub(crate) const CONNECTION_COLUMN_COUNT: usize = 16;

pub(crate) fn connection(
    row: &Row<'_>,
    at: usize,
) -> rusqlite::Result<Result<ConnectionRecord, StoreError>> {
    let vault_id: String = row.get(at)?;
    let id: String = row.get(at + 1)?;
    let app_id: String = row.get(at + 2)?;
    let app_key: String = row.get(at + 3)?;
    let provider_key: String = row.get(at + 4)?;
    let status: String = row.get(at + 5)?;
    let scope_json: String = row.get(at + 6)?;
    let token_set: Vec<u8> = row.get(at + 7)?;
    let token_format: i64 = row.get(at + 8)?;
    let expires_at: Option<i64> = row.get(at + 9)?;
    let has_refresh: bool = row.get(at + 10)?;
    let version: i64 = row.get(at + 11)?;
    let lease_owner: Option<String> = row.get(at + 12)?;
    let lease_until: Option<i64> = row.get(at + 13)?;
    let created_at: i64 = row.get(at + 14)?;
    let refreshed_at: Option<i64> = row.get(at + 15)?;
    Ok((|| {
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
            expires_at: opt_time(expires_at)?,
            has_refresh,
            version,
            lease_owner,
            lease_until: opt_time(lease_until)?,
            created_at: time(created_at)?,
            refreshed_at: opt_time(refreshed_at)?,
        })
    })())
}
