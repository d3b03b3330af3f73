//! SQL of providers, apps, connect sessions and connections. The calls that decide a
//! race (`begin_exchange`, `spend_connect_link`, the refresh lease and its fenced
//! writes) are each one conditional UPDATE: PostgreSQL re-checks its WHERE clause
//! against the newest row version once a competing writer commits, so exactly one
//! caller, in any process, sees its row changed.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use std::sync::LazyLock;

use tokenwarden_domain::{ApiKeyId, AppKey, ConnectSessionId, ConnectionId, VaultId};
use tokenwarden_store::*;
use tokio_postgres::error::SqlState;

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, get, ms, opt_ms, parsed, sql_error, time};
use crate::rows::{
    self, APP_COLUMN_COUNT, APP_COLUMNS, CONNECTION_COLUMN_COUNT, CONNECTION_COLUMNS,
    SESSION_COLUMN_COUNT, SESSION_COLUMNS, scopes_json,
};
use crate::store::{KEY_AUTH_COLUMN_COUNT, KEY_AUTH_COLUMNS, key_auth_record};

pub(crate) async fn create_provider(
    s: &PgStore,
    p: ProviderRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    tx.execute(
        "INSERT INTO providers (vault_id, key, spec, created_at) VALUES ($1, $2, $3, $4)",
        &[&p.vault_id.as_str(), &p.key, &p.spec, &ms(p.created_at)],
    )
    .await
    .map_err(sql_error("provider"))?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

fn provider_record(r: &tokio_postgres::Row) -> Result<ProviderRecord, StoreError> {
    Ok(ProviderRecord {
        vault_id: parsed("providers.vault_id", VaultId::parse(get(r, 0)?))?,
        key: get(r, 1)?,
        spec: get(r, 2)?,
        created_at: time(get(r, 3)?)?,
    })
}

pub(crate) async fn list_providers(
    s: &PgStore,
    vault: &VaultId,
) -> Result<Vec<ProviderRecord>, StoreError> {
    let c = s.client().await?;
    let st = c
        .prepare_cached(
            "SELECT vault_id, key, spec, created_at FROM providers WHERE vault_id = $1 ORDER BY key",
        )
        .await
        .map_err(db)?;
    let rows = c.query(&st, &[&vault.as_str()]).await.map_err(db)?;
    rows.iter().map(provider_record).collect()
}

pub(crate) async fn provider(
    s: &PgStore,
    vault: &VaultId,
    key: &str,
) -> Result<Option<ProviderRecord>, StoreError> {
    let row = s.query_opt("SELECT vault_id, key, spec, created_at FROM providers WHERE vault_id = $1 AND key = $2", &[&vault.as_str(), &key]).await?;
    row.as_ref().map(provider_record).transpose()
}

pub(crate) async fn create_app(
    s: &PgStore,
    a: AppRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    tx.execute(
        "INSERT INTO apps (id, vault_id, key, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &a.id.as_str(),
            &a.vault_id.as_str(),
            &a.key.as_str(),
            &a.provider_key,
            &a.client_id,
            &a.client_secret,
            &scopes_json(&a.scopes),
            &a.status.as_str(),
            &ms(a.created_at),
            &ms(a.updated_at),
        ],
    )
    .await
    .map_err(sql_error("app"))?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn list_apps(s: &PgStore, vault: &VaultId) -> Result<Vec<AppRecord>, StoreError> {
    let c = s.client().await?;
    let st = c
        .prepare_cached(&format!(
            "SELECT {APP_COLUMNS} FROM apps a WHERE a.vault_id = $1 ORDER BY a.key"
        ))
        .await
        .map_err(db)?;
    let rows = c.query(&st, &[&vault.as_str()]).await.map_err(db)?;
    rows.iter().map(|r| rows::app(r, 0)).collect()
}

pub(crate) async fn app_by_key(
    s: &PgStore,
    vault: &VaultId,
    key: &AppKey,
) -> Result<Option<AppRecord>, StoreError> {
    let row = s
        .query_opt(
            &format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.vault_id = $1 AND a.key = $2"),
            &[&vault.as_str(), &key.as_str()],
        )
        .await?;
    row.map(|r| rows::app(&r, 0)).transpose()
}

pub(crate) async fn update_app(
    s: &PgStore,
    vault: &VaultId,
    key: &AppKey,
    u: AppUpdate,
    at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<Option<AppRecord>, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let row = tx
        .query_opt(
            &format!(
                "UPDATE apps a SET
                    status = coalesce($3, a.status),
                    scopes = coalesce($4, a.scopes),
                    client_id = coalesce($5, a.client_id),
                    client_secret = coalesce($6, a.client_secret),
                    updated_at = $7
                 WHERE a.vault_id = $1 AND a.key = $2
                 RETURNING {APP_COLUMNS}"
            ),
            &[
                &vault.as_str(),
                &key.as_str(),
                &u.status.map(AppStatus::as_str),
                &u.scopes.as_ref().map(scopes_json),
                &u.client_id,
                &u.client_secret,
                &ms(at),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let app = rows::app(&row, 0)?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(app))
}

pub(crate) async fn delete_app(
    s: &PgStore,
    vault: &VaultId,
    key: &AppKey,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let row = tx
        .query_one(
            "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = $1 AND a.key = $2",
            &[&vault.as_str(), &key.as_str()],
        )
        .await
        .map_err(db)?;
    let in_use: i64 = get(&row, 0)?;
    if in_use > 0 {
        return Err(StoreError::Conflict("connection of this app"));
    }
    // A connection inserted since the count makes the RESTRICT foreign key refuse.
    let deleted = tx
        .execute(
            "DELETE FROM apps WHERE vault_id = $1 AND key = $2",
            &[&vault.as_str(), &key.as_str()],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                StoreError::Conflict("connection of this app")
            } else {
                db(e)
            }
        })?;
    let deleted = changed_one(deleted);
    if deleted {
        write_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(deleted)
}

pub(crate) async fn create_connect_session(
    s: &PgStore,
    cs: ConnectSessionRecord,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    tx.execute(
        "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12, NULL, $13, $14, $15)",
        &[
            &cs.id.as_str(),
            &cs.vault_id.as_str(),
            &cs.app_id.as_str(),
            &cs.connection_id.as_str(),
            &cs.state_hash,
            &cs.secrets,
            &scopes_json(&cs.scopes),
            &cs.return_to,
            &cs.status.as_str(),
            &cs.created_by,
            &ms(cs.created_at),
            &ms(cs.expires_at),
            &cs.link.as_ref().map(|l| l.hash.as_slice()),
            &cs.link.as_ref().map(|l| l.sealed_url.as_slice()),
            &cs.link.as_ref().map(|l| ms(l.expires_at)),
        ],
    )
    .await
    .map_err(sql_error("connect session"))?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn connect_session(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectSessionId,
) -> Result<Option<ConnectSessionRecord>, StoreError> {
    let row = s.query_opt(&format!(
            "SELECT {SESSION_COLUMNS} FROM connect_sessions s WHERE s.vault_id = $1 AND s.id = $2"
        ), &[&vault.as_str(), &id.as_str()]).await?;
    row.map(|r| rows::session(&r, 0)).transpose()
}

pub(crate) async fn pending_connect(
    s: &PgStore,
    state_hash: &[u8],
) -> Result<Option<PendingConnect>, StoreError> {
    let row = s
        .query_opt(
            &format!(
                "SELECT {SESSION_COLUMNS}, {APP_COLUMNS}
             FROM connect_sessions s
             JOIN apps a ON a.id = s.app_id
             WHERE s.state_hash = $1"
            ),
            &[&state_hash],
        )
        .await?;
    row.map(|r| {
        Ok(PendingConnect {
            session: rows::session(&r, 0)?,
            app: rows::app(&r, SESSION_COLUMN_COUNT)?,
        })
    })
    .transpose()
}

pub(crate) async fn connect_link(
    s: &PgStore,
    link_hash: &[u8],
) -> Result<Option<ConnectLinkView>, StoreError> {
    let row = s
        .query_opt(
            &format!(
                "SELECT {SESSION_COLUMNS}, {APP_COLUMNS}, v.name
             FROM connect_sessions s
             JOIN apps a ON a.id = s.app_id
             JOIN vaults v ON v.id = s.vault_id
             WHERE s.link_hash = $1"
            ),
            &[&link_hash],
        )
        .await?;
    row.map(|r| {
        Ok(ConnectLinkView {
            session: rows::session(&r, 0)?,
            app: rows::app(&r, SESSION_COLUMN_COUNT)?,
            vault_name: get(&r, SESSION_COLUMN_COUNT + APP_COLUMN_COUNT)?,
        })
    })
    .transpose()
}

pub(crate) async fn spend_connect_link(
    s: &PgStore,
    id: &ConnectSessionId,
    binding_hash: &[u8],
    now: DateTime<Utc>,
    state_expires_at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let changed = tx
        .execute(
            "UPDATE connect_sessions
             SET link_spent_at = $2, binding_hash = $3, expires_at = $4
             WHERE id = $1 AND status = 'pending' AND link_hash IS NOT NULL
               AND link_spent_at IS NULL AND link_expires_at > $2",
            &[&id.as_str(), &ms(now), &binding_hash, &ms(state_expires_at)],
        )
        .await
        .map_err(db)?;
    let changed = changed_one(changed);
    if changed {
        write_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(changed)
}

pub(crate) async fn begin_exchange(
    s: &PgStore,
    id: &ConnectSessionId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let c = s.client().await?;
    let st = c
        .prepare_cached(
            "UPDATE connect_sessions SET status = 'exchanging'
             WHERE id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .await
        .map_err(db)?;
    let changed = c
        .execute(&st, &[&id.as_str(), &ms(now)])
        .await
        .map_err(db)?;
    Ok(changed_one(changed))
}

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict.
async fn upsert_connection(tx: &Transaction<'_>, c: &ConnectionUpsert) -> Result<(), StoreError> {
    let t = &c.tokens;
    let changed = tx
        .execute(
            "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9)
             ON CONFLICT (vault_id, id) DO UPDATE SET
                app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
                token_set = excluded.token_set, token_format = excluded.token_format,
                expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
                version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
                updated_at = excluded.updated_at
             WHERE connections.app_id = excluded.app_id",
            &[
                &c.vault_id.as_str(),
                &c.id.as_str(),
                &c.app_id.as_str(),
                &scopes_json(&t.scopes),
                &t.token_set,
                &(t.token_format as i64),
                &opt_ms(t.expires_at),
                &t.has_refresh,
                &ms(t.at),
            ],
        )
        .await
        .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::Conflict("connection of another app"));
    }
    Ok(())
}

pub(crate) async fn finish_connect(
    s: &PgStore,
    id: &ConnectSessionId,
    cu: ConnectionUpsert,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    upsert_connection(&tx, &cu).await?;
    tx.execute(
        "UPDATE connect_sessions SET status = 'completed', finished_at = $2, connection_id = $3 WHERE id = $1",
        &[&id.as_str(), &ms(cu.tokens.at), &cu.id.as_str()],
    )
    .await
    .map_err(db)?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn fail_connect(
    s: &PgStore,
    id: &ConnectSessionId,
    error: &str,
    at: DateTime<Utc>,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    tx.execute(
        "UPDATE connect_sessions SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1 AND status IN ('pending', 'exchanging')",
        &[&id.as_str(), &error, &ms(at)],
    )
    .await
    .map_err(db)?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn insert_connection(
    s: &PgStore,
    cu: ConnectionUpsert,
    audit: NewAuditRecord,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let t = &cu.tokens;
    // A plain INSERT: of two racing inserts of one id, the second fails on the primary
    // key (SQLite's single writer gives the same answer by checking first).
    tx.execute(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
         VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9)",
        &[
            &cu.vault_id.as_str(),
            &cu.id.as_str(),
            &cu.app_id.as_str(),
            &scopes_json(&t.scopes),
            &t.token_set,
            &(t.token_format as i64),
            &opt_ms(t.expires_at),
            &t.has_refresh,
            &ms(t.at),
        ],
    )
    .await
    .map_err(sql_error("connection"))?;
    write_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn list_connections(
    s: &PgStore,
    vault: &VaultId,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    let c = s.client().await?;
    let st = c
        .prepare_cached(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = $1 ORDER BY c.created_at, c.id"
        ))
        .await
        .map_err(db)?;
    let rows = c.query(&st, &[&vault.as_str()]).await.map_err(db)?;
    rows.iter().map(|r| rows::connection(r, 0)).collect()
}

pub(crate) async fn connection(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
) -> Result<Option<ConnectionRecord>, StoreError> {
    let row = s.query_opt(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = $1 AND c.id = $2"
        ), &[&vault.as_str(), &id.as_str()]).await?;
    row.map(|r| rows::connection(&r, 0)).transpose()
}

pub(crate) async fn connection_for_token(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
) -> Result<Option<ConnectionForToken>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CONNECTION_COLUMNS}, {APP_COLUMNS}, v.sealing_private_key, v.dek_key_id, p.spec
             FROM connections c
             JOIN apps a ON a.id = c.app_id
             JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
             WHERE c.vault_id = $1 AND c.id = $2"
        )
    });
    let row = s.query_opt(&SQL, &[&vault.as_str(), &id.as_str()]).await?;
    row.map(|r| connection_for_token_at(&r, 0)).transpose()
}

/// Reads the columns of [`connection_for_token`] from `r`, starting at column `at`.
fn connection_for_token_at(
    r: &tokio_postgres::Row,
    at: usize,
) -> Result<ConnectionForToken, StoreError> {
    let base = at + CONNECTION_COLUMN_COUNT + APP_COLUMN_COUNT;
    Ok(ConnectionForToken {
        connection: rows::connection(r, at)?,
        app: rows::app(r, at + CONNECTION_COLUMN_COUNT)?,
        sealing_private_key: get(r, base)?,
        sealing_key_id: rows::dek_key_id(get(r, base + 1)?)?,
        custom_provider_spec: get(r, base + 2)?,
    })
}

/// The key and the connection in one round trip: outer joins, so an unknown connection
/// still answers the key (with NULL connection columns).
pub(crate) async fn api_key_auth_with_connection(
    s: &PgStore,
    key: &ApiKeyId,
    id: &ConnectionId,
) -> Result<Option<KeyWithConnection>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {KEY_AUTH_COLUMNS}, c.id IS NOT NULL,
                    {CONNECTION_COLUMNS}, {APP_COLUMNS}, v.sealing_private_key, v.dek_key_id, p.spec
             FROM api_keys k
             LEFT JOIN connections c ON c.vault_id = k.vault_id AND c.id = $2
             LEFT JOIN apps a ON a.id = c.app_id
             LEFT JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
             WHERE k.id = $1"
        )
    });
    let Some(r) = s.query_opt(&SQL, &[&key.as_str(), &id.as_str()]).await? else {
        return Ok(None);
    };
    let key_row = key_auth_record(key, &r)?;
    let found: bool = get(&r, KEY_AUTH_COLUMN_COUNT)?;
    let connection = if found {
        Some(connection_for_token_at(&r, KEY_AUTH_COLUMN_COUNT + 1)?)
    } else {
        None
    };
    Ok(Some((key_row, connection)))
}

async fn update_one(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<bool, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(db)?;
    let changed = c.execute(&st, params).await.map_err(db)?;
    Ok(changed_one(changed))
}

pub(crate) async fn rewrap_tokens(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    token_set: Vec<u8>,
) -> Result<bool, StoreError> {
    let c = s.client().await?;
    update_one(
        &c,
        "UPDATE connections SET token_set = $4, token_format = 1
         WHERE vault_id = $1 AND id = $2 AND version = $3 AND token_format = 2",
        &[&vault.as_str(), &id.as_str(), &version, &token_set],
    )
    .await
}

pub(crate) async fn acquire_refresh_lease(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    owner: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let c = s.client().await?;
    update_one(
        &c,
        "UPDATE connections SET lease_owner = $4, lease_until = $5
         WHERE vault_id = $1 AND id = $2 AND version = $3
           AND (lease_owner IS NULL OR lease_until <= $6 OR lease_owner = $4)",
        &[
            &vault.as_str(),
            &id.as_str(),
            &version,
            &owner,
            &ms(until),
            &ms(now),
        ],
    )
    .await
}

pub(crate) async fn commit_refresh(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    t: TokenWrite,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    // Fenced on the version alone, as on SQLite: every token write bumps it, so a newer
    // token is never overwritten, and a refresher whose lease ran out but whose write is
    // still the newest keeps its rotated refresh token.
    let changed = update_one(
        &tx,
        "UPDATE connections SET token_set = $4, token_format = $5, expires_at = $6, has_refresh = $7,
            scopes = $8, version = version + 1, lease_owner = NULL, lease_until = NULL,
            refreshed_at = $9, updated_at = $9, status = 'active'
         WHERE vault_id = $1 AND id = $2 AND version = $3",
        &[
            &vault.as_str(),
            &id.as_str(),
            &version,
            &t.token_set,
            &(t.token_format as i64),
            &opt_ms(t.expires_at),
            &t.has_refresh,
            &scopes_json(&t.scopes),
            &ms(t.at),
        ],
    )
    .await?;
    if changed {
        write_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(changed)
}

pub(crate) async fn release_refresh_lease(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    owner: &str,
) -> Result<(), StoreError> {
    let c = s.client().await?;
    update_one(
        &c,
        "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE vault_id = $1 AND id = $2 AND lease_owner = $3",
        &[&vault.as_str(), &id.as_str(), &owner],
    )
    .await?;
    Ok(())
}

pub(crate) async fn mark_needs_reauth(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    owner: &str,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let changed = update_one(
        &tx,
        "UPDATE connections SET status = 'needs_reauth', lease_owner = NULL, lease_until = NULL
         WHERE vault_id = $1 AND id = $2 AND version = $3 AND lease_owner = $4",
        &[&vault.as_str(), &id.as_str(), &version, &owner],
    )
    .await?;
    if changed {
        write_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(changed)
}

pub(crate) async fn delete_connection(
    s: &PgStore,
    vault: &VaultId,
    id: &ConnectionId,
    audit: NewAuditRecord,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let deleted = update_one(
        &tx,
        "DELETE FROM connections WHERE vault_id = $1 AND id = $2",
        &[&vault.as_str(), &id.as_str()],
    )
    .await?;
    if deleted {
        write_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(deleted)
}
