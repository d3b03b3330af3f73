//! Refresh coordination: exactly one provider refresh per connection at a time, across
//! requests in this process and across processes sharing the database.
//!
//! - In-process, callers of one connection queue on a local mutex, so only one of them
//!   talks to the database about refreshing (single flight). When it succeeds it leaves
//!   the connection row it wrote (ciphertext only: each caller decrypts with its own
//!   key) for the callers that queued behind it, so a thousand concurrent readers cost
//!   one provider call and no extra query each, and finish right after it.
//! - Across processes, the refresher takes a *lease* in the connection row: a
//!   conditional UPDATE that succeeds only at the version it read and when no live lease
//!   is held. Others poll the row until the version moves (they then use the new token)
//!   or the lease expires (its holder died; they take over).
//! - The write of the new tokens is fenced: it succeeds only if the row is still at the
//!   version the lease was taken at (every token write bumps it), so a slow or presumed
//!   dead refresher can never overwrite a newer token. The rotated refresh token is
//!   committed before any caller sees the new access token.
//! - The refresher gives up on the provider before its lease ends (the provider call,
//!   retries included, runs under a deadline a little shorter than the lease), so a
//!   live refresher never writes after losing its lease; and the fence makes such a
//!   write impossible anyway. The default lease (45 s) exceeds the longest refresh
//!   (10 s HTTP timeout × 3 attempts with backoff).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chrono::Duration;
use tokenwarden_crypto::{DataKey, Purpose};
use tokenwarden_store::{
    Actor, ConnectionForToken, ConnectionStatus, HealthChange, Schedule, TokenFormat, TokenWrite,
};
use tokenwarden_webhooks::EventType;
use tracing::{info, warn};

use crate::audit::{RequestContext, record};
use crate::refresh_provider::{KeyHolder, RefreshFailure, holder_kind};
use crate::session_secrets::token_binding;
use crate::token_set::TokenSet;
use crate::{ServiceError, ServiceResult, Services};

type LockKey = (String, String);

/// Per-connection local mutexes, dropped when nobody waits on them.
#[derive(Debug, Default)]
pub(crate) struct RefreshLocks {
    map: Mutex<HashMap<LockKey, Weak<LocalLock>>>,
}

/// The local lock of one connection, with the outcome of its last refresh.
type LocalLock = tokio::sync::Mutex<RecentOutcome>;

/// What the last refresh under a local lock left for the callers queued behind it.
#[derive(Debug, Default)]
pub(crate) enum RecentOutcome {
    #[default]
    Nothing,
    /// A transient failure at the version it was tried on: callers queued behind a
    /// failing refresh share its answer instead of each running the whole retry cycle
    /// against a struggling provider.
    Failed(RecentFailure),
    /// A success: the row as committed, for callers that saw the version it replaced.
    /// Boxed: a connection row is large, and most locks never hold one.
    Refreshed(Box<RecentSuccess>),
}

#[derive(Debug, Clone)]
pub(crate) struct RecentSuccess {
    at: std::time::Instant,
    /// The version the refresh started from (callers that read it are queued behind).
    from_version: i64,
    /// The connection as it was re-read after the commit. Holds the token set only
    /// encrypted under the vault's data key.
    row: ConnectionForToken,
}

#[derive(Debug, Clone)]
pub(crate) struct RecentFailure {
    at: std::time::Instant,
    version: i64,
    retry_after_secs: Option<u64>,
}

/// How long a refresh's outcome is shared with callers that queued behind it.
const OUTCOME_SHARING: std::time::Duration = std::time::Duration::from_secs(2);

impl RefreshLocks {
    fn get(&self, key: LockKey) -> Arc<LocalLock> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        if map.len() > 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(RecentOutcome::default()));
        map.insert(key, Arc::downgrade(&lock));
        lock
    }
}

const POLL_INTERVAL_MS: u64 = 20;

fn lease_owner() -> String {
    crate::random_hex_id::<16>("")
}

impl Services {
    async fn reread(&self, row: &ConnectionForToken) -> ServiceResult<ConnectionForToken> {
        self.connections_store()
            .connection_for_token(&row.connection.vault_id, &row.connection.id)
            .await?
            .ok_or(ServiceError::NotFound("connection"))
    }

    /// Refreshes `row`'s token unless another caller does it first; either way returns
    /// the newest token set and whether it is newer than what the caller first saw.
    pub(crate) async fn refresh_coordinated(
        &self,
        holder: KeyHolder<'_>,
        dek: &DataKey,
        row: ConnectionForToken,
        force: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<(TokenSet, bool)> {
        let seen_version = row.connection.version;
        let lock = self.refresh_locks.get((
            row.connection.vault_id.to_string(),
            row.connection.id.to_string(),
        ));
        let mut local = lock.lock().await;
        if let RecentOutcome::Refreshed(done) = &*local
            && done.from_version == seen_version
            && done.at.elapsed() < OUTCOME_SHARING
        {
            // The caller ahead of us refreshed the very version we saw: its row is ours.
            let row = done.row.clone();
            drop(local);
            let set = self.open_token_set(dek, &row).await?;
            if !force && set.expires_at.is_some_and(|e| e <= self.clock.now()) {
                return Err(ServiceError::TokenExpired);
            }
            return Ok((set, true));
        }
        let lease = Duration::seconds(self.config.refresh_lease_secs as i64);
        let give_up = self.clock.now() + lease + Duration::seconds(5);
        let mut current = row;
        loop {
            current = self.reread(&current).await?;
            let c = &current.connection;
            if c.version != seen_version {
                // Someone refreshed (or reconnected) while we waited: use theirs.
                let set = self.open_token_set(dek, &current).await?;
                if !force && set.expires_at.is_some_and(|e| e <= self.clock.now()) {
                    return Err(ServiceError::TokenExpired);
                }
                return Ok((set, true));
            }
            if c.status == ConnectionStatus::NeedsReauth {
                return Err(ServiceError::NeedsReauth);
            }
            if Self::app_is_blocked(&current) {
                return Err(ServiceError::AppBlocked);
            }
            if let RecentOutcome::Failed(failure) = &*local
                && failure.version == c.version
                && failure.at.elapsed() < OUTCOME_SHARING
            {
                return Err(ServiceError::ProviderUnavailable {
                    retry_after_secs: failure.retry_after_secs,
                });
            }
            let now = self.clock.now();
            let owner = lease_owner();
            if self
                .store
                .acquire_refresh_lease(&c.vault_id, &c.id, c.version, &owner, now + lease, now)
                .await?
            {
                let version = c.version;
                let result = self.refresh_as_owner(holder, current, &owner, ctx).await;
                *local = match &result {
                    Err(ServiceError::ProviderUnavailable { retry_after_secs }) => {
                        RecentOutcome::Failed(RecentFailure {
                            at: std::time::Instant::now(),
                            version,
                            retry_after_secs: *retry_after_secs,
                        })
                    }
                    Ok((_, Some(row))) => RecentOutcome::Refreshed(Box::new(RecentSuccess {
                        at: std::time::Instant::now(),
                        from_version: version,
                        row: row.clone(),
                    })),
                    Ok((_, None)) | Err(_) => RecentOutcome::Nothing,
                };
                return result.map(|(set, _)| (set, true));
            }
            if now > give_up {
                return Err(ServiceError::ProviderUnavailable {
                    retry_after_secs: Some(1),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    /// Runs the refresh in a task of its own: if the caller goes away (a client
    /// timeout drops the request), the provider call and the commit of a rotated refresh
    /// token still finish, so the token the provider just issued is never lost. Answers
    /// the newest token set and, when known, the row that holds it.
    async fn refresh_as_owner(
        &self,
        holder: KeyHolder<'_>,
        row: ConnectionForToken,
        owner: &str,
        ctx: &RequestContext,
    ) -> ServiceResult<(TokenSet, Option<ConnectionForToken>)> {
        let me = self.me.upgrade().ok_or_else(|| {
            ServiceError::internal(std::io::Error::other("the services are shutting down"))
        })?;
        let dek = self.holder_data_key(holder, &row)?;
        let actor = holder.actor();
        let owner = owner.to_owned();
        let ctx = ctx.clone();
        tokio::spawn(async move { me.refresh_detached(&dek, row, &owner, actor, &ctx).await })
            .await
            .map_err(ServiceError::internal)?
    }

    async fn refresh_detached(
        &self,
        dek: &DataKey,
        row: ConnectionForToken,
        owner: &str,
        actor: Actor,
        ctx: &RequestContext,
    ) -> ServiceResult<(TokenSet, Option<ConnectionForToken>)> {
        let audit = |outcome: &'static str| {
            record(
                ctx,
                self.clock.now(),
                Some(&row.connection.vault_id),
                actor.clone(),
                "connection.refresh",
                Some(row.connection.id.to_string()),
                outcome,
            )
        };
        // Stop before the lease runs out, so nobody else can have taken over while we
        // still talk to the provider.
        let budget =
            std::time::Duration::from_secs(self.config.refresh_lease_secs.saturating_sub(2).max(1));
        let result = match tokio::time::timeout(budget, self.call_provider_refresh(dek, &row)).await
        {
            Ok(r) => r,
            Err(_) => Err(RefreshFailure::Other(ServiceError::ProviderUnavailable {
                retry_after_secs: Some(1),
            })),
        };
        let c = &row.connection;
        let refresh_spec = self
            .provider_definition(&row.app.provider_key, row.custom_provider_spec.as_deref())
            .map(|def| def.spec().refresh)
            .unwrap_or_default();
        match result {
            Ok((new_set, scopes)) => {
                let now = self.clock.now();
                let schedule = self.schedule_tokens(
                    &refresh_spec,
                    new_set.expires_at,
                    new_set.refresh_token.is_some(),
                    row.vault_managed,
                    now,
                );
                let events = if c.status == ConnectionStatus::Failing {
                    vec![self.connection_event(
                        EventType::ConnectionRecovered,
                        c,
                        ConnectionStatus::Active,
                        None,
                        now,
                    )]
                } else {
                    Vec::new()
                };
                let token_set = dek.encrypt(
                    &token_binding(Purpose::TokenSet, &c.vault_id, &c.id, &c.app_id),
                    &new_set.to_bytes()?,
                );
                let committed = self
                    .store
                    .commit_refresh(
                        &c.vault_id,
                        &c.id,
                        c.version,
                        TokenWrite {
                            token_set: token_set.into(),
                            token_format: TokenFormat::DataKey,
                            expires_at: new_set.expires_at,
                            has_refresh: new_set.refresh_token.is_some(),
                            scopes,
                            at: now,
                            schedule,
                        },
                        audit("success"),
                        events,
                    )
                    .await?;
                if committed {
                    self.lifecycle_metrics
                        .refresh(holder_kind(&actor), "success");
                    if c.status == ConnectionStatus::Failing {
                        self.lifecycle_metrics.status_change("failing", "active");
                    }
                    info!(vault.id = %c.vault_id, connection.id = %c.id, next_refresh_at = ?schedule.next_refresh_at, "token refreshed");
                    // For the callers queued behind this refresh; they can re-read
                    // themselves if this fails.
                    let written = match self.reread(&row).await {
                        Ok(written) => Some(written),
                        Err(e) => {
                            warn!(error = %e, connection.id = %c.id, "could not re-read a refreshed connection");
                            None
                        }
                    };
                    return Ok((new_set, written));
                }
                // Fenced out: our lease expired and a newer write exists. Ours loses.
                warn!(connection.id = %c.id, "refresh result discarded: a newer token was written");
                let newer = self.reread(&row).await?;
                Ok((self.open_token_set(dek, &newer).await?, Some(newer)))
            }
            Err(RefreshFailure::InvalidGrant) => {
                // A racing refresh may have rotated the token under us: re-read once.
                let again = self.reread(&row).await?;
                if again.connection.version != c.version {
                    return Ok((self.open_token_set(dek, &again).await?, Some(again)));
                }
                let now = self.clock.now();
                let reason = "the provider refused the refresh token: connect again";
                let event = self.connection_event(
                    EventType::ConnectionNeedsReauth,
                    c,
                    ConnectionStatus::NeedsReauth,
                    Some(reason),
                    now,
                );
                let change = HealthChange {
                    status: ConnectionStatus::NeedsReauth,
                    status_reason: Some(reason.into()),
                    schedule: Schedule::default(),
                    failures: 0,
                    expiring_notified_at: None,
                    at: now,
                };
                if self
                    .connections_store()
                    .set_health(
                        &c.vault_id,
                        &c.id,
                        c.version,
                        Some(owner),
                        change,
                        Some(audit("needs_reauth")),
                        vec![event],
                    )
                    .await?
                {
                    self.lifecycle_metrics
                        .refresh(holder_kind(&actor), "needs_reauth");
                    self.lifecycle_metrics
                        .status_change(c.status.as_str(), "needs_reauth");
                }
                warn!(connection.id = %c.id, "refresh token refused: connection needs re-authorisation");
                Err(ServiceError::NeedsReauth)
            }
            Err(RefreshFailure::Other(e)) => {
                let reason = match &e {
                    ServiceError::ProviderUnavailable { .. } => {
                        Some("the provider did not answer the refresh (timeout, 5xx or rate limit); the tokens are kept and retried".to_owned())
                    }
                    // Not the provider's error code: careless providers quote secrets there.
                    ServiceError::ProviderError(_) => Some(
                        "the provider answered the refresh with an error; the tokens are kept and retried".to_owned(),
                    ),
                    _ => None,
                };
                let marked = match reason {
                    Some(reason) => {
                        let now = self.clock.now();
                        let change = self.failing_health(c, row.vault_managed, reason.clone(), now);
                        let events = if c.status == ConnectionStatus::Failing {
                            Vec::new()
                        } else {
                            vec![self.connection_event(
                                EventType::ConnectionRefreshFailed,
                                c,
                                ConnectionStatus::Failing,
                                Some(&reason),
                                now,
                            )]
                        };
                        let marked = self
                            .connections_store()
                            .set_health(
                                &c.vault_id,
                                &c.id,
                                c.version,
                                Some(owner),
                                change,
                                Some(audit("failing")),
                                events,
                            )
                            .await;
                        if let Ok(true) = marked {
                            self.lifecycle_metrics
                                .refresh(holder_kind(&actor), "failing");
                            if c.status != ConnectionStatus::Failing {
                                self.lifecycle_metrics
                                    .status_change(c.status.as_str(), "failing");
                            }
                        }
                        matches!(marked, Ok(true))
                    }
                    None => false,
                };
                if !marked
                    && let Err(release) = self
                        .store
                        .release_refresh_lease(&c.vault_id, &c.id, owner)
                        .await
                {
                    warn!(error = %release, "could not release the refresh lease; it will expire");
                }
                Err(e)
            }
        }
    }
}
