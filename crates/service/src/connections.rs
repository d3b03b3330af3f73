//! Connections: import, listing, token retrieval (refresh on read), refresh, delete.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};
use tokenwarden_crypto::{DataKey, KeyId, Purpose, SealingPrivateKey};
use tokenwarden_domain::{AppKey, ConnectionId, Role, Scopes};
use tokenwarden_oauth::{AccessToken, ClientCredentials, RefreshToken, revoke_all};
use tokenwarden_store::{
    AppStatus, ConnectionForToken, ConnectionRecord, ConnectionStatus, TokenFormat,
};
use tokenwarden_webhooks::EventType;
use tracing::{info, warn};

use crate::api_keys::Prefetched;
use crate::apps::record_for;
use crate::audit::RequestContext;
use crate::refresh_provider::KeyHolder;
use crate::session_secrets::token_binding;
use crate::token_set::TokenSet;
use crate::{Caller, KeyAndConnection, ServiceError, ServiceResult, Services};

/// A connection as listed (no token).
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub app: AppKey,
    pub provider: String,
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub next_refresh_at: Option<DateTime<Utc>>,
}

/// The filters of the list call.
#[derive(Debug, Clone, Default)]
pub struct ConnectionListFilter {
    pub status: Option<ConnectionStatus>,
    pub app: Option<AppKey>,
    /// Only connections due for refresh within this many seconds (already due included).
    pub expiring_within_secs: Option<u64>,
}

/// A token as the token call answers it.
#[derive(Debug)]
pub struct TokenView {
    pub access_token: AccessToken,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub refreshed: bool,
    pub extras: Map<String, Value>,
}

impl TokenView {
    fn new(set: &TokenSet, refreshed: bool) -> Self {
        Self {
            access_token: set.access_token.clone(),
            token_type: set.token_type.clone(),
            expires_at: set.expires_at,
            scopes: set.scopes.clone(),
            refreshed,
            extras: set.extras.clone(),
        }
    }
}

/// Options of the token call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenOptions {
    /// The token must stay valid at least this long (else it is refreshed first).
    pub min_ttl_secs: Option<u64>,
    pub force_refresh: bool,
}

/// A validated import.
#[derive(Debug)]
pub struct ImportConnection {
    pub app: AppKey,
    pub connection_id: ConnectionId,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<Scopes>,
    /// Values for the provider's URL parameters, as for a connect session.
    pub params: BTreeMap<String, String>,
}

/// The stored status, except that a token nothing can refresh is `expired` from the
/// moment it expires, before the worker gets to record it.
fn status_of(c: &ConnectionRecord, now: DateTime<Utc>) -> ConnectionStatus {
    match c.status {
        ConnectionStatus::Active if !c.has_refresh && c.expires_at.is_some_and(|e| e <= now) => {
            ConnectionStatus::Expired
        }
        status => status,
    }
}

impl Services {
    pub(crate) fn connection_view(&self, c: ConnectionRecord) -> ConnectionView {
        let now = self.clock.now();
        let status = status_of(&c, now);
        let status_reason = match (status, c.status) {
            (ConnectionStatus::Expired, ConnectionStatus::Active) => {
                Some("the access token expired and there is no refresh token".to_owned())
            }
            _ => c.status_reason,
        };
        ConnectionView {
            status: status.as_str(),
            status_reason,
            id: c.id,
            app: c.app_key,
            provider: c.provider_key,
            scopes: c.scopes,
            expires_at: c.expires_at,
            created_at: c.created_at,
            refreshed_at: c.refreshed_at,
            next_refresh_at: c.next_refresh_at,
        }
    }

    pub async fn list_connections(
        &self,
        caller: &Caller,
        filter: ConnectionListFilter,
    ) -> ServiceResult<Vec<ConnectionView>> {
        caller.require_any(&[Role::Read, Role::Proxy, Role::Refresh])?;
        let now = self.clock.now();
        let refresh_due_by = match filter.expiring_within_secs {
            None => None,
            Some(secs) => Some(
                i64::try_from(secs)
                    .ok()
                    .and_then(Duration::try_seconds)
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or_else(|| {
                        ServiceError::InvalidRequest("expiring_within is too large".into())
                    })?,
            ),
        };
        let store_filter = tokenwarden_store::ConnectionFilter {
            // `expired` is also derived (see `status_of`): filter on the answer instead.
            status: filter
                .status
                .filter(|s| *s != ConnectionStatus::Expired && *s != ConnectionStatus::Active),
            app: filter.app,
            refresh_due_by,
        };
        let all = self
            .connections_store()
            .list_connections(&caller.vault_id, &store_filter)
            .await?;
        Ok(all
            .into_iter()
            .filter(|c| {
                caller.scope.allows_connection(c.id.as_str())
                    && caller.scope.allows_app(c.app_key.as_str())
            })
            .map(|c| self.connection_view(c))
            .filter(|v| filter.status.is_none_or(|s| v.status == s.as_str()))
            .collect())
    }

    pub async fn get_connection(
        &self,
        caller: &Caller,
        id: &ConnectionId,
    ) -> ServiceResult<ConnectionView> {
        caller.require_any(&[Role::Read, Role::Proxy])?;
        caller.require_connection(id.as_str())?;
        let c = self
            .store
            .connection(&caller.vault_id, id)
            .await?
            .ok_or(ServiceError::NotFound("connection"))?;
        caller.see_app(c.app_key.as_str(), "connection")?;
        Ok(self.connection_view(c))
    }

    /// Opens a connection's token set, re-encrypting a sealed one under the DEK.
    pub(crate) async fn open_token_set(
        &self,
        dek: &DataKey,
        row: &ConnectionForToken,
    ) -> ServiceResult<TokenSet> {
        let c = &row.connection;
        match c.token_format {
            TokenFormat::DataKey => {
                let plain = dek.decrypt(
                    &token_binding(Purpose::TokenSet, &c.vault_id, &c.id, &c.app_id),
                    c.token_set.as_bytes(),
                )?;
                TokenSet::from_plaintext(&plain)
            }
            TokenFormat::Sealed => {
                let sk_plain = dek.decrypt(
                    &tokenwarden_crypto::Binding::new(
                        Purpose::SealingPrivateKey,
                        &c.vault_id,
                        c.vault_id.as_str(),
                    ),
                    row.sealing_private_key.as_bytes(),
                )?;
                let sk =
                    SealingPrivateKey::from_bytes(KeyId(row.sealing_key_id), sk_plain.as_bytes())?;
                let plain = sk.open(
                    &token_binding(Purpose::SealedTokenSet, &c.vault_id, &c.id, &c.app_id),
                    c.token_set.as_bytes(),
                )?;
                let set = TokenSet::from_plaintext(&plain)?;
                // The first key holder to read it moves it under the DEK; losing this
                // race to a newer write is fine (the newer write wins).
                let rewrapped = dek.encrypt(
                    &token_binding(Purpose::TokenSet, &c.vault_id, &c.id, &c.app_id),
                    plain.as_bytes(),
                );
                if let Err(e) = self
                    .store
                    .rewrap_tokens(&c.vault_id, &c.id, c.version, rewrapped.into())
                    .await
                {
                    warn!(error = %e, connection.id = %c.id, "could not re-encrypt a sealed token set");
                }
                Ok(set)
            }
        }
    }

    /// The caller's data key and a connection it may use tokens of: in scope, not
    /// waiting for re-authorisation.
    pub(crate) async fn usable_connection(
        &self,
        caller: &Caller,
        id: &ConnectionId,
    ) -> ServiceResult<(DataKey, ConnectionForToken)> {
        self.usable_connection_read(caller, id, Prefetched::NotRead)
            .await
    }

    /// [`Services::usable_connection`], with the row already read when `prefetched`.
    async fn usable_connection_read(
        &self,
        caller: &Caller,
        id: &ConnectionId,
        prefetched: Prefetched,
    ) -> ServiceResult<(DataKey, ConnectionForToken)> {
        caller.require_connection(id.as_str())?;
        let dek = caller.data_key()?;
        let row = match prefetched {
            Prefetched::Found(row) => *row,
            Prefetched::Missing => return Err(ServiceError::NotFound("connection")),
            Prefetched::NotRead => self
                .store
                .connection_for_token(&caller.vault_id, id)
                .await?
                .ok_or(ServiceError::NotFound("connection"))?,
        };
        caller.see_app(row.app.key.as_str(), "connection")?;
        // A blocked app serves nothing: no token, no proxy call, no refresh.
        if Self::app_is_blocked(&row) {
            return Err(ServiceError::AppBlocked);
        }
        if row.connection.status == ConnectionStatus::NeedsReauth {
            return Err(ServiceError::NeedsReauth);
        }
        Ok((dek, row))
    }

    /// `GET /v1/connections/{id}/token`: refreshes first when the token expires within
    /// the skew (or `min_ttl`), or when forced. The caller comes from
    /// [`Services::authenticate_reader`], which checked the `read` role; the connection
    /// row read with its key is used instead of a second read.
    pub async fn token(
        &self,
        auth: KeyAndConnection,
        id: &ConnectionId,
        options: TokenOptions,
        ctx: &RequestContext,
    ) -> ServiceResult<TokenView> {
        let (caller, prefetched) = auth.take_connection(id);
        let caller = &caller;
        let (dek, row) = self.usable_connection_read(caller, id, prefetched).await?;
        let (set, refreshed) = self
            .current_token_set(caller, &dek, row, options, ctx)
            .await?;
        let audit = record_for(
            caller,
            ctx,
            self.clock.now(),
            "connection.token_read",
            id.as_str(),
        );
        self.audit_batch.append(&self.store, audit).await?;
        Ok(TokenView::new(&set, refreshed))
    }

    /// The connection's token set to use on the caller's behalf (the token call, the
    /// proxy): refreshed first when it expires within the skew (or `min_ttl`), or when
    /// forced. Whether it was refreshed comes with it.
    pub(crate) async fn current_token_set(
        &self,
        caller: &Caller,
        dek: &DataKey,
        row: ConnectionForToken,
        options: TokenOptions,
        ctx: &RequestContext,
    ) -> ServiceResult<(TokenSet, bool)> {
        let now = self.clock.now();
        let margin = Duration::seconds(
            options
                .min_ttl_secs
                .unwrap_or(0)
                .max(self.config.refresh_skew_secs)
                .min(i64::MAX as u64) as i64,
        );
        let due =
            options.force_refresh || row.connection.expires_at.is_some_and(|e| e - margin <= now);
        if due && row.connection.has_refresh {
            return self
                .refresh_coordinated(KeyHolder::Key(caller), dek, row, options.force_refresh, ctx)
                .await;
        }
        let set = self.open_token_set(dek, &row).await?;
        if set.expires_at.is_some_and(|e| e <= now) {
            return Err(ServiceError::TokenExpired);
        }
        Ok((set, false))
    }

    /// `POST /v1/connections/{id}/refresh` (connect or refresh role): always refreshes,
    /// and answers the connection, never its token: only `read` keys receive tokens
    /// (docs/api.md, "Conventions"). Every call is audited, whether it ran the refresh or
    /// shared the outcome of one that was already under way.
    pub async fn refresh_connection(
        &self,
        caller: &Caller,
        id: &ConnectionId,
        ctx: &RequestContext,
    ) -> ServiceResult<ConnectionView> {
        caller.require_any(&[Role::Connect, Role::Refresh])?;
        let (dek, row) = self.usable_connection(caller, id).await?;
        if !row.connection.has_refresh {
            return Err(ServiceError::Conflict(
                "the connection has no refresh token".into(),
            ));
        }
        let result = self
            .refresh_coordinated(KeyHolder::Key(caller), &dek, row, true, ctx)
            .await;
        let mut audit = record_for(
            caller,
            ctx,
            self.clock.now(),
            "connection.refresh_request",
            id.as_str(),
        );
        if result.is_err() {
            audit.outcome = "error";
        }
        self.audit_batch.append(&self.store, audit).await?;
        result?;
        let stored = self
            .store
            .connection(&caller.vault_id, id)
            .await?
            .ok_or(ServiceError::NotFound("connection"))?;
        Ok(self.connection_view(stored))
    }

    /// `DELETE /v1/connections/{id}`: revokes at the provider (refresh token, then
    /// access token, RFC 7009) where it can, then deletes. A provider failure keeps the
    /// connection (502) unless `force`.
    pub async fn delete_connection(
        &self,
        caller: &Caller,
        id: &ConnectionId,
        force: bool,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        caller.require(Role::Connect)?;
        caller.require_connection(id.as_str())?;
        let row = self
            .store
            .connection_for_token(&caller.vault_id, id)
            .await?
            .ok_or(ServiceError::NotFound("connection"))?;
        caller.see_app(row.app.key.as_str(), "connection")?;
        let dek = caller.data_key()?;
        let revoked = self.revoke_at_provider(&dek, &row).await;
        if let Err(e) = &revoked {
            if !force {
                warn!(error = %e, connection.id = %id, "revocation failed; connection kept");
                return Err(ServiceError::RevocationFailed);
            }
            warn!(error = %e, connection.id = %id, "revocation failed; deleting anyway (force)");
        }
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "connection.delete", id.as_str());
        let event = self.connection_event(
            EventType::ConnectionDeleted,
            &row.connection,
            row.connection.status,
            Some("deleted through the API"),
            now,
        );
        if !self
            .store
            .delete_connection(&caller.vault_id, id, audit, vec![event])
            .await?
        {
            return Err(ServiceError::NotFound("connection"));
        }
        info!(vault.id = %caller.vault_id, connection.id = %id, "connection deleted");
        Ok(())
    }

    async fn revoke_at_provider(
        &self,
        dek: &DataKey,
        row: &ConnectionForToken,
    ) -> ServiceResult<()> {
        let def =
            self.provider_definition(&row.app.provider_key, row.custom_provider_spec.as_deref())?;
        if def.revocation_url().is_none() {
            return Ok(());
        }
        let set = self.open_token_set(dek, row).await?;
        let def = def
            .with_params(&set.params)
            .map_err(ServiceError::internal)?;
        let credentials = ClientCredentials {
            client_id: row.app.client_id.clone(),
            client_secret: self.open_client_secret(
                dek,
                &row.app,
                row.custom_provider_spec.as_deref(),
            )?,
        };
        let refresh = set.refresh_token.clone().map(RefreshToken::new);
        let access = set.access_token.clone();
        revoke_all(
            &self.oauth.http,
            &def,
            &credentials,
            &access,
            refresh.as_ref(),
            self.clock.now(),
        )
        .await
        .map_err(|e| ServiceError::ProviderError(e.to_string()))?;
        Ok(())
    }

    pub(crate) fn app_is_blocked(row: &ConnectionForToken) -> bool {
        row.app.status == AppStatus::Blocked
    }
}
