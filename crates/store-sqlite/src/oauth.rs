//! SQL of providers, apps, connect sessions and connections.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tokenwarden_domain::{AppKey, ConnectSessionId, ConnectionId, VaultId};
use tokenwarden_store::*;

use crate::audit::write_audit;
use crate::convert::{db, ms, opt_ms, parsed, sql_error, time};
use crate::rows::{
    self, APP_COLUMN_COUNT, APP_COLUMNS, CONNECTION_COLUMN_COUNT, CONNECTION_COLUMNS,
    SESSION_COLUMN_COUNT, SESSION_COLUMNS, scopes_json,
};

/// A write's transaction: a savepoint in the writer's group commit (see `pool`).
fn immediate(conn: &mut Connection) -> Result<rusqlite::Savepoint<'_>, StoreError> {
    conn.savepoint().map_err(db)
}

pub(crate) fn create_provider(
    conn: &mut Connection,
    p: ProviderRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    tx.execute(
        "INSERT INTO providers (vault_id, key, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![p.vault_id.as_str(), p.key, p.spec, ms(p.created_at)],
    )
    .map_err(sql_error("provider"))?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

fn provider_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn provider_record(
    (vault_id, key, spec, created_at): (String, String, String, i64),
) -> Result<ProviderRecord, StoreError> {
    Ok(ProviderRecord {
        vault_id: parsed("providers.vault_id", VaultId::parse(&vault_id))?,
        key,
        spec,
        created_at: time(created_at)?,
    })
}

pub(crate) fn list_providers(
    conn: &mut Connection,
    vault: &str,
) -> Result<Vec<ProviderRecord>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT vault_id, key, spec, created_at FROM providers WHERE vault_id = ?1 ORDER BY key")
        .map_err(db)?;
    let rows = st
        .query_map([vault], provider_row)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.into_iter().map(provider_record).collect()
}

pub(crate) fn provider(
    conn: &mut Connection,
    vault: &str,
    key: &str,
) -> Result<Option<ProviderRecord>, StoreError> {
    conn.prepare_cached(
        "SELECT vault_id, key, spec, created_at FROM providers WHERE vault_id = ?1 AND key = ?2",
    )
    .and_then(|mut st| st.query_row([vault, key], provider_row).optional())
    .map_err(db)?
    .map(provider_record)
    .transpose()
}

pub(crate) fn create_app(
    conn: &mut Connection,
    a: AppRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    tx.execute(
        "INSERT INTO apps (id, vault_id, key, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            a.id.as_str(),
            a.vault_id.as_str(),
            a.key.as_str(),
            a.provider_key,
            a.client_id,
            a.client_secret,
            scopes_json(&a.scopes),
            a.status.as_str(),
            ms(a.created_at),
            ms(a.updated_at)
        ],
    )
    .map_err(sql_error("app"))?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

pub(crate) fn list_apps(conn: &mut Connection, vault: &str) -> Result<Vec<AppRecord>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {APP_COLUMNS} FROM apps a WHERE a.vault_id = ?1 ORDER BY a.key"
        ))
        .map_err(db)?;
    let rows = st
        .query_map([vault], |r| rows::app(r, 0))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.into_iter().collect()
}

pub(crate) fn app_by_key(
    conn: &Connection,
    vault: &str,
    key: &str,
) -> Result<Option<AppRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {APP_COLUMNS} FROM apps a WHERE a.vault_id = ?1 AND a.key = ?2"
    ))
    .and_then(|mut st| st.query_row([vault, key], |r| rows::app(r, 0)).optional())
    .map_err(db)?
    .transpose()
}

pub(crate) fn update_app(
    conn: &mut Connection,
    vault: &VaultId,
    key: &AppKey,
    u: AppUpdate,
    at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<Option<AppRecord>, StoreError> {
    let tx = immediate(conn)?;
    let changed = tx
        .execute(
            "UPDATE apps SET
                status = coalesce(?3, status),
                scopes = coalesce(?4, scopes),
                client_id = coalesce(?5, client_id),
                client_secret = coalesce(?6, client_secret),
                updated_at = ?7
             WHERE vault_id = ?1 AND key = ?2",
            params![
                vault.as_str(),
                key.as_str(),
                u.status.map(AppStatus::as_str),
                u.scopes.as_ref().map(scopes_json),
                u.client_id,
                u.client_secret,
                ms(at)
            ],
        )
        .map_err(db)?;
    if changed == 0 {
        return Ok(None);
    }
    write_audit(&tx, &audit)?;
    let app = app_by_key(&tx, vault.as_str(), key.as_str())?;
    tx.commit().map_err(db)?;
    Ok(app)
}

pub(crate) fn delete_app(
    conn: &mut Connection,
    vault: &VaultId,
    key: &AppKey,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let in_use: i64 = tx
        .query_row(
            "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = ?1 AND a.key = ?2",
            [vault.as_str(), key.as_str()],
            |r| r.get(0),
        )
        .map_err(db)?;
    if in_use > 0 {
        return Err(StoreError::Conflict("connection of this app"));
    }
    let deleted = tx
        .execute(
            "DELETE FROM apps WHERE vault_id = ?1 AND key = ?2",
            [vault.as_str(), key.as_str()],
        )
        .map_err(db)?;
    if deleted == 1 {
        write_audit(&tx, &audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(deleted == 1)
}

pub(crate) fn create_connect_session(
    conn: &mut Connection,
    s: ConnectSessionRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    tx.execute(
        "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12, NULL, ?13, ?14, ?15)",
        params![
            s.id.as_str(),
            s.vault_id.as_str(),
            s.app_id.as_str(),
            s.connection_id.as_str(),
            s.state_hash,
            s.secrets,
            scopes_json(&s.scopes),
            s.return_to,
            s.status.as_str(),
            s.created_by,
            ms(s.created_at),
            ms(s.expires_at),
            s.link.as_ref().map(|l| l.hash.as_slice()),
            s.link.as_ref().map(|l| l.sealed_url.as_slice()),
            s.link.as_ref().map(|l| ms(l.expires_at)),
        ],
    )
    .map_err(sql_error("connect session"))?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

pub(crate) fn connect_session(
    conn: &mut Connection,
    vault: &str,
    id: &str,
) -> Result<Option<ConnectSessionRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM connect_sessions s WHERE s.vault_id = ?1 AND s.id = ?2"
    ))
    .and_then(|mut st| {
        st.query_row([vault, id], |r| rows::session(r, 0))
            .optional()
    })
    .map_err(db)?
    .transpose()
}

pub(crate) fn pending_connect(
    conn: &mut Connection,
    state_hash: &[u8],
) -> Result<Option<PendingConnect>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, {APP_COLUMNS}
         FROM connect_sessions s
         JOIN apps a ON a.id = s.app_id
         WHERE s.state_hash = ?1"
    );
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_row([state_hash], |r| {
                Ok((rows::session(r, 0)?, rows::app(r, SESSION_COLUMN_COUNT)?))
            })
            .optional()
        })
        .map_err(db)?;
    row.map(|(session, app)| {
        Ok(PendingConnect {
            session: session?,
            app: app?,
        })
    })
    .transpose()
}

pub(crate) fn connect_link(
    conn: &mut Connection,
    link_hash: &[u8],
) -> Result<Option<ConnectLinkView>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, {APP_COLUMNS}, v.name
         FROM connect_sessions s
         JOIN apps a ON a.id = s.app_id
         JOIN vaults v ON v.id = s.vault_id
         WHERE s.link_hash = ?1"
    );
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_row([link_hash], |r| {
                Ok((
                    rows::session(r, 0)?,
                    rows::app(r, SESSION_COLUMN_COUNT)?,
                    r.get::<_, String>(SESSION_COLUMN_COUNT + APP_COLUMN_COUNT)?,
                ))
            })
            .optional()
        })
        .map_err(db)?;
    row.map(|(session, app, vault_name)| {
        Ok(ConnectLinkView {
            session: session?,
            app: app?,
            vault_name,
        })
    })
    .transpose()
}

pub(crate) fn spend_connect_link(
    conn: &mut Connection,
    id: &str,
    binding_hash: &[u8],
    now: DateTime<Utc>,
    state_expires_at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let changed = tx
        .execute(
            "UPDATE connect_sessions
             SET link_spent_at = ?2, binding_hash = ?3, expires_at = ?4
             WHERE id = ?1 AND status = 'pending' AND link_hash IS NOT NULL
               AND link_spent_at IS NULL AND link_expires_at > ?2",
            params![id, ms(now), binding_hash, ms(state_expires_at)],
        )
        .map_err(db)?;
    if changed == 1 {
        write_audit(&tx, &audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn begin_exchange(
    conn: &mut Connection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE connect_sessions SET status = 'exchanging'
             WHERE id = ?1 AND status = 'pending' AND expires_at > ?2",
            params![id, ms(now)],
        )
        .map_err(db)?;
    Ok(changed == 1)
}

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict.
fn upsert_connection(tx: &Connection, c: &ConnectionUpsert) -> Result<(), StoreError> {
    let t = &c.tokens;
    let changed = tx.execute(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, 1, NULL, NULL, ?9, NULL, ?9)
         ON CONFLICT (vault_id, id) DO UPDATE SET
            app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
            token_set = excluded.token_set, token_format = excluded.token_format,
            expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
            version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
            updated_at = excluded.updated_at
         WHERE connections.app_id = excluded.app_id",
        params![
            c.vault_id.as_str(),
            c.id.as_str(),
            c.app_id.as_str(),
            scopes_json(&t.scopes),
            t.token_set,
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            ms(t.at)
        ],
    )
    .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::Conflict("connection of another app"));
    }
    Ok(())
}

pub(crate) fn finish_connect(
    conn: &mut Connection,
    id: &ConnectSessionId,
    c: ConnectionUpsert,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    upsert_connection(&tx, &c)?;
    tx.execute(
        "UPDATE connect_sessions SET status = 'completed', finished_at = ?2, connection_id = ?3 WHERE id = ?1",
        params![id.as_str(), ms(c.tokens.at), c.id.as_str()],
    )
    .map_err(db)?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

pub(crate) fn fail_connect(
    conn: &mut Connection,
    id: &ConnectSessionId,
    error: &str,
    at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    tx.execute(
        "UPDATE connect_sessions SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1 AND status IN ('pending', 'exchanging')",
        params![id.as_str(), error, ms(at)],
    )
    .map_err(db)?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

pub(crate) fn insert_connection(
    conn: &mut Connection,
    c: ConnectionUpsert,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM connections WHERE vault_id = ?1 AND id = ?2",
            [c.vault_id.as_str(), c.id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if exists.is_some() {
        return Err(StoreError::Conflict("connection"));
    }
    upsert_connection(&tx, &c)?;
    write_audit(&tx, &audit)?;
    tx.commit().map_err(db)
}

pub(crate) fn list_connections(
    conn: &mut Connection,
    vault: &str,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = ?1 ORDER BY c.created_at, c.id"
        ))
        .map_err(db)?;
    let rows = st
        .query_map([vault], |r| rows::connection(r, 0))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.into_iter().collect()
}

pub(crate) fn connection(
    conn: &mut Connection,
    vault: &str,
    id: &str,
) -> Result<Option<ConnectionRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = ?1 AND c.id = ?2"
    ))
    .and_then(|mut st| st.query_row([vault, id], |r| rows::connection(r, 0)).optional())
    .map_err(db)?
    .transpose()
}

pub(crate) fn connection_for_token(
    conn: &Connection,
    vault: &str,
    id: &str,
) -> Result<Option<ConnectionForToken>, StoreError> {
    // Built once: this is every token read's query, and the statement cache is keyed
    // by its text.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CONNECTION_COLUMNS}, {APP_COLUMNS}, v.sealing_private_key, v.dek_key_id, p.spec
             FROM connections c
             JOIN apps a ON a.id = c.app_id
             JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
             WHERE c.vault_id = ?1 AND c.id = ?2"
        )
    });
    let base = CONNECTION_COLUMN_COUNT + APP_COLUMN_COUNT;
    let row = conn
        .prepare_cached(&SQL)
        .and_then(|mut st| {
            st.query_row([vault, id], |r| {
                Ok((
                    rows::connection(r, 0)?,
                    rows::app(r, CONNECTION_COLUMN_COUNT)?,
                    r.get::<_, Vec<u8>>(base)?,
                    r.get::<_, u32>(base + 1)?,
                    r.get::<_, Option<String>>(base + 2)?,
                ))
            })
            .optional()
        })
        .map_err(db)?;
    row.map(
        |(connection, app, sealing_private_key, sealing_key_id, spec)| {
            Ok(ConnectionForToken {
                connection: connection?,
                app: app?,
                sealing_private_key,
                sealing_key_id,
                custom_provider_spec: spec,
            })
        },
    )
    .transpose()
}

pub(crate) fn rewrap_tokens(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    version: i64,
    token_set: Vec<u8>,
) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE connections SET token_set = ?4, token_format = 1
             WHERE vault_id = ?1 AND id = ?2 AND version = ?3 AND token_format = 2",
            params![vault, id, version, token_set],
        )
        .map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn acquire_refresh_lease(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    version: i64,
    owner: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE connections SET lease_owner = ?4, lease_until = ?5
             WHERE vault_id = ?1 AND id = ?2 AND version = ?3
               AND (lease_owner IS NULL OR lease_until <= ?6 OR lease_owner = ?4)",
            params![vault, id, version, owner, ms(until), ms(now)],
        )
        .map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn commit_refresh(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    version: i64,
    t: TokenWrite,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    // Fenced on the version alone: every token write bumps it, so a newer token is
    // never overwritten; and a refresher whose lease ran out but whose write is still
    // the newest keeps its rotated refresh token instead of throwing it away.
    let changed = tx
        .execute(
            "UPDATE connections SET token_set = ?4, token_format = ?5, expires_at = ?6, has_refresh = ?7,
                scopes = ?8, version = version + 1, lease_owner = NULL, lease_until = NULL,
                refreshed_at = ?9, updated_at = ?9, status = 'active'
             WHERE vault_id = ?1 AND id = ?2 AND version = ?3",
            params![
                vault,
                id,
                version,
                t.token_set,
                t.token_format as i64,
                opt_ms(t.expires_at),
                t.has_refresh,
                scopes_json(&t.scopes),
                ms(t.at)
            ],
        )
        .map_err(db)?;
    if changed == 1 {
        write_audit(&tx, &audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn release_refresh_lease(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    owner: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE vault_id = ?1 AND id = ?2 AND lease_owner = ?3",
        params![vault, id, owner],
    )
    .map_err(db)?;
    Ok(())
}

pub(crate) fn mark_needs_reauth(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    version: i64,
    owner: &str,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let changed = tx
        .execute(
            "UPDATE connections SET status = 'needs_reauth', lease_owner = NULL, lease_until = NULL
             WHERE vault_id = ?1 AND id = ?2 AND version = ?3 AND lease_owner = ?4",
            params![vault, id, version, owner],
        )
        .map_err(db)?;
    if changed == 1 {
        write_audit(&tx, &audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(changed == 1)
}

pub(crate) fn delete_connection(
    conn: &mut Connection,
    vault: &str,
    id: &str,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let deleted = tx
        .execute(
            "DELETE FROM connections WHERE vault_id = ?1 AND id = ?2",
            [vault, id],
        )
        .map_err(db)?;
    if deleted == 1 {
        write_audit(&tx, &audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(deleted == 1)
}

pub(crate) fn connection_key(vault: &VaultId, id: &ConnectionId) -> (String, String) {
    (vault.as_str().to_owned(), id.as_str().to_owned())
}
