//! SQL of providers, apps, connect sessions and connections that runs inside a write
//! transaction or is shared by several methods.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Transaction};
use tokenwarden_domain::{AppKey, ConnectionId, VaultId};
use tokenwarden_store::*;

use crate::audit::write_audit;
use crate::convert::{
    Cols, db, is_duplicate, is_still_referenced, ms, opt_ms, params, parsed, sql_error, time,
};
use crate::rows::{self, APP_COLUMNS, CONNECTION_COLUMNS, scopes_json};

pub(crate) fn provider_record(row: Row) -> Result<ProviderRecord, StoreError> {
    let mut c = Cols::new(row);
    let vault_id: String = c.get("providers.vault_id")?;
    Ok(ProviderRecord {
        vault_id: parsed("providers.vault_id", VaultId::parse(&vault_id))?,
        key: c.get("providers.key")?,
        spec: c.get("providers.spec")?,
        created_at: time(c.get("providers.created_at")?)?,
    })
}

pub(crate) async fn insert_app(
    tx: &mut Transaction<'static>,
    a: &AppRecord,
) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO apps (id, vault_id, `key`, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            a.id.as_str(),
            a.vault_id.as_str(),
            a.key.as_str(),
            a.provider_key.as_str(),
            a.client_id.as_str(),
            a.client_secret.as_slice(),
            scopes_json(&a.scopes),
            a.status.as_str(),
            ms(a.created_at),
            ms(a.updated_at)
        ],
    )
    .await
    .map_err(sql_error("app"))
}

pub(crate) async fn app_by_key(
    q: &mut impl Queryable,
    vault: &str,
    key: &str,
) -> Result<Option<AppRecord>, StoreError> {
    let row: Option<Row> = q
        .exec_first(
            format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.vault_id = ? AND a.`key` = ?"),
            params![vault, key],
        )
        .await
        .map_err(db)?;
    row.map(|r| rows::app(&mut Cols::new(r))).transpose()
}

pub(crate) async fn update_app(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    key: &AppKey,
    u: &AppUpdate,
    at: DateTime<Utc>,
    audit: &NewAuditRecord,
) -> Result<Option<AppRecord>, StoreError> {
    tx.exec_drop(
        "UPDATE apps SET
            status = coalesce(?, status),
            scopes = coalesce(?, scopes),
            client_id = coalesce(?, client_id),
            client_secret = coalesce(?, client_secret),
            updated_at = ?
         WHERE vault_id = ? AND `key` = ?",
        params![
            u.status.map(AppStatus::as_str),
            u.scopes.as_ref().map(scopes_json),
            u.client_id.as_deref(),
            u.client_secret.as_deref(),
            ms(at),
            vault.as_str(),
            key.as_str()
        ],
    )
    .await
    .map_err(db)?;
    if tx.affected_rows() == 0 {
        return Ok(None);
    }
    write_audit(tx, audit).await?;
    app_by_key(tx, vault.as_str(), key.as_str()).await
}

pub(crate) async fn delete_app(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    key: &AppKey,
    audit: &NewAuditRecord,
) -> Result<bool, StoreError> {
    let in_use: Option<i64> = tx
        .exec_first(
            "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = ? AND a.`key` = ?",
            params![vault.as_str(), key.as_str()],
        )
        .await
        .map_err(db)?;
    if in_use.unwrap_or(0) > 0 {
        return Err(StoreError::Conflict("connection of this app"));
    }
    // A connection added by another process since the count is caught by the foreign
    // key (ON DELETE RESTRICT), and is the same conflict.
    tx.exec_drop(
        "DELETE FROM apps WHERE vault_id = ? AND `key` = ?",
        params![vault.as_str(), key.as_str()],
    )
    .await
    .map_err(|e| {
        if is_still_referenced(&e) {
            StoreError::Conflict("connection of this app")
        } else {
            db(e)
        }
    })?;
    let deleted = tx.affected_rows() == 1;
    if deleted {
        write_audit(tx, audit).await?;
    }
    Ok(deleted)
}

pub(crate) async fn insert_connect_session(
    tx: &mut Transaction<'static>,
    s: &ConnectSessionRecord,
) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, ?, ?, ?)",
        params![
            s.id.as_str(),
            s.vault_id.as_str(),
            s.app_id.as_str(),
            s.connection_id.as_str(),
            s.state_hash.as_slice(),
            s.secrets.as_slice(),
            scopes_json(&s.scopes),
            s.return_to.as_deref(),
            s.status.as_str(),
            s.created_by.as_str(),
            ms(s.created_at),
            ms(s.expires_at),
            s.link.as_ref().map(|l| l.hash.as_slice()),
            s.link.as_ref().map(|l| l.sealed_url.as_slice()),
            s.link.as_ref().map(|l| ms(l.expires_at)),
        ],
    )
    .await
    .map_err(sql_error("connect session"))
}

async fn insert_connection_row(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
) -> Result<(), mysql_async::Error> {
    let t = &c.tokens;
    tx.exec_drop(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
         VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, 1, NULL, NULL, ?, NULL, ?)",
        params![
            c.vault_id.as_str(),
            c.id.as_str(),
            c.app_id.as_str(),
            scopes_json(&t.scopes),
            t.token_set.as_slice(),
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            ms(t.at),
            ms(t.at)
        ],
    )
    .await
}

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict. (MySQL's upsert has no condition, so the
/// row is locked and looked at first.)
pub(crate) async fn upsert_connection(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
) -> Result<(), StoreError> {
    // Twice at most: when another process inserts the row between our look and our
    // insert, the duplicate error leaves this transaction alive, and the second look
    // (a locking read: it waits for that insert to commit) finds the row.
    for _ in 0..2 {
        let app: Option<String> = tx
            .exec_first(
                "SELECT app_id FROM connections WHERE vault_id = ? AND id = ? FOR UPDATE",
                params![c.vault_id.as_str(), c.id.as_str()],
            )
            .await
            .map_err(db)?;
        match app {
            Some(app) if app != c.app_id.as_str() => {
                return Err(StoreError::Conflict("connection of another app"));
            }
            Some(_) => {
                let t = &c.tokens;
                tx.exec_drop(
                    "UPDATE connections SET status = 'active', scopes = ?, token_set = ?, token_format = ?,
                        expires_at = ?, has_refresh = ?, version = version + 1,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?
                     WHERE vault_id = ? AND id = ?",
                    params![
                        scopes_json(&t.scopes),
                        t.token_set.as_slice(),
                        t.token_format as i64,
                        opt_ms(t.expires_at),
                        t.has_refresh,
                        ms(t.at),
                        c.vault_id.as_str(),
                        c.id.as_str()
                    ],
                )
                .await
                .map_err(db)?;
                return Ok(());
            }
            None => match insert_connection_row(tx, c).await {
                Ok(()) => return Ok(()),
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(db(e)),
            },
        }
    }
    Err(StoreError::Conflict("connection"))
}

/// Inserts a connection that must not exist yet.
pub(crate) async fn insert_new_connection(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
) -> Result<(), StoreError> {
    insert_connection_row(tx, c)
        .await
        .map_err(sql_error("connection"))
}

pub(crate) fn connection_for_token_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CONNECTION_COLUMNS}, {APP_COLUMNS}, v.sealing_private_key, v.dek_key_id, p.spec
             FROM connections c
             JOIN apps a ON a.id = c.app_id
             JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.`key` = a.provider_key
             WHERE c.vault_id = ? AND c.id = ?"
        )
    });
    &SQL
}

pub(crate) async fn commit_refresh(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    t: &TokenWrite,
    audit: &NewAuditRecord,
) -> Result<bool, StoreError> {
    // Fenced on the version alone: every token write bumps it, so a newer token is
    // never overwritten; and a refresher whose lease ran out but whose write is still
    // the newest keeps its rotated refresh token instead of throwing it away.
    tx.exec_drop(
        "UPDATE connections SET token_set = ?, token_format = ?, expires_at = ?, has_refresh = ?,
            scopes = ?, version = version + 1, lease_owner = NULL, lease_until = NULL,
            refreshed_at = ?, updated_at = ?, status = 'active'
         WHERE vault_id = ? AND id = ? AND version = ?",
        params![
            t.token_set.as_slice(),
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            scopes_json(&t.scopes),
            ms(t.at),
            ms(t.at),
            vault.as_str(),
            id.as_str(),
            version
        ],
    )
    .await
    .map_err(db)?;
    let changed = tx.affected_rows() == 1;
    if changed {
        write_audit(tx, audit).await?;
    }
    Ok(changed)
}
