//! Importing a connection whose tokens were obtained elsewhere, and the events that
//! announce a connection written in place (created or reconnected).

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::Map;
use tokenwarden_crypto::Purpose;
use tokenwarden_domain::{ConnectionId, Role};
use tokenwarden_oauth::AccessToken;
use tokenwarden_store::{
    AppStatus, ConnectionStatus, ConnectionUpsert, TokenFormat, TokenWrite, UpsertEvents,
};
use tokenwarden_webhooks::EventType;
use tracing::info;

use crate::apps::record_for;
use crate::audit::RequestContext;
use crate::lifecycle::{connection_data, new_event};
use crate::session_secrets::token_binding;
use crate::token_set::TokenSet;
use crate::{Caller, ConnectionView, ImportConnection, ServiceError, ServiceResult, Services};

impl Services {
    pub async fn import_connection(
        &self,
        caller: &Caller,
        import: ImportConnection,
        ctx: &RequestContext,
    ) -> ServiceResult<ConnectionView> {
        caller.require(Role::Connect)?;
        caller.require_app(import.app.as_str())?;
        caller.require_connection(import.connection_id.as_str())?;
        let app = self
            .store
            .app_by_key(&caller.vault_id, &import.app)
            .await?
            .ok_or(ServiceError::NotFound("app"))?;
        if app.status == AppStatus::Blocked {
            return Err(ServiceError::AppBlocked);
        }
        let custom = self
            .store
            .provider(&caller.vault_id, &app.provider_key)
            .await?;
        self.provider_definition(&app.provider_key, custom.as_ref().map(|p| p.spec.as_str()))?
            .check_params(&import.params)
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let dek = caller.data_key()?;
        let scopes = import.scopes.unwrap_or_else(|| app.scopes.clone());
        let set = TokenSet {
            access_token: AccessToken::new(import.access_token.expose_secret()),
            token_type: "Bearer".into(),
            refresh_token: import
                .refresh_token
                .as_ref()
                .map(|r| r.expose_secret().to_owned()),
            expires_at: import.expires_at,
            scopes: scopes.as_slice().to_vec(),
            id_token: None,
            extras: Map::new(),
            params: import.params.clone(),
        };
        let now = self.clock.now();
        let token_set = dek.encrypt(
            &token_binding(
                Purpose::TokenSet,
                &caller.vault_id,
                &import.connection_id,
                &app.id,
            ),
            &set.to_bytes()?,
        );
        let managed = self
            .vaults_store()
            .vault(&caller.vault_id)
            .await?
            .is_some_and(|v| v.managed);
        let refresh_spec = self
            .provider_definition(&app.provider_key, custom.as_ref().map(|p| p.spec.as_str()))?
            .spec()
            .refresh;
        let schedule = self.schedule_tokens(
            &refresh_spec,
            set.expires_at,
            set.refresh_token.is_some(),
            managed,
            now,
        );
        let events = self.upsert_events(
            &caller.vault_id,
            &import.connection_id,
            &app,
            set.expires_at,
            now,
        );
        let audit = record_for(
            caller,
            ctx,
            now,
            "connection.import",
            import.connection_id.as_str(),
        );
        self.connections_store()
            .insert_connection(
                ConnectionUpsert {
                    vault_id: caller.vault_id.clone(),
                    id: import.connection_id.clone(),
                    app_id: app.id.clone(),
                    tokens: TokenWrite {
                        token_set: token_set.into(),
                        token_format: TokenFormat::DataKey,
                        expires_at: set.expires_at,
                        has_refresh: set.refresh_token.is_some(),
                        scopes,
                        at: now,
                        schedule,
                    },
                    events: Some(events),
                },
                audit,
            )
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::Conflict(_) => ServiceError::Conflict(format!(
                    "a connection {} already exists",
                    import.connection_id
                )),
                other => other,
            })?;
        info!(vault.id = %caller.vault_id, connection.id = %import.connection_id, "connection imported");
        let stored = self
            .store
            .connection(&caller.vault_id, &import.connection_id)
            .await?
            .ok_or(ServiceError::NotFound("connection"))?;
        Ok(self.connection_view(stored))
    }

    /// The `connection.created` / `connection.reconnected` pair of an upsert: the store
    /// writes the one that applies.
    pub(crate) fn upsert_events(
        &self,
        vault: &tokenwarden_domain::VaultId,
        id: &ConnectionId,
        app: &tokenwarden_store::AppRecord,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> UpsertEvents {
        let data = connection_data(
            id.as_str(),
            app.key.as_str(),
            &app.provider_key,
            ConnectionStatus::Active,
            None,
            expires_at,
        );
        UpsertEvents {
            created: new_event(
                vault.clone(),
                EventType::ConnectionCreated,
                data.clone(),
                at,
            ),
            reconnected: new_event(vault.clone(), EventType::ConnectionReconnected, data, at),
        }
    }
}
