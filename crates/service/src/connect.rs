//! Connect sessions (docs/design.md, "Connect"); the callback is in `callback.rs`.
//!
//! Creating a session needs a key holder (the DEK opens the app's client secret); the
//! callback runs with nobody present. So the session stores the client secret, the PKCE
//! verifier and the nonce encrypted under a key derived from the one-time `state`, and
//! the callback, given the state back by the provider, opens exactly that and nothing
//! else, then seals the new tokens to the vault's public key. It never sees the DEK.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokenwarden_crypto::{Binding, KeyId, Purpose, SealingPrivateKey};
use tokenwarden_domain::{AppKey, ConnectSessionId, ConnectionId, Role, Scopes};
use tokenwarden_oauth::{AuthorizationRequest, Nonce, PkceVerifier, State, authorization_url};
use tokenwarden_store::{AppStatus, ConnectSessionRecord, ConnectStatus};
use tracing::info;
use url::Url;

use crate::apps::record_for;
use crate::audit::RequestContext;
use crate::session_secrets::{SESSION_LIFETIME_MINUTES, SessionSecrets, state_hash, state_key};
use crate::{Caller, ServiceError, ServiceResult, Services};

/// A validated `POST /v1/connect-sessions`.
#[derive(Debug)]
pub struct NewConnectSession {
    pub app: AppKey,
    pub connection_id: Option<ConnectionId>,
    pub scopes: Option<Scopes>,
    pub return_to: Option<String>,
    /// Values for the provider's URL parameters (`{tenant}`, `{subdomain}`, `{shop}`).
    pub params: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct CreatedConnectSession {
    pub id: ConnectSessionId,
    pub connection_id: ConnectionId,
    /// Carries the state: a secret until the browser is sent there.
    pub authorization_url: SecretString,
    /// `{public_url}/connect/{link}`: shown this once, only its hash is stored.
    pub connect_link: SecretString,
    pub connect_link_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session's status as the API shows it (`expired` is derived from the clock).
#[derive(Debug, Clone)]
pub struct ConnectSessionView {
    pub id: ConnectSessionId,
    pub status: &'static str,
    pub connection_id: ConnectionId,
    pub error: Option<String>,
    pub expires_at: DateTime<Utc>,
}
impl Services {
    fn check_return_to(&self, return_to: &str) -> ServiceResult<()> {
        let url = Url::parse(return_to).map_err(|_| {
            ServiceError::InvalidRequest("return_to must be an absolute URL".into())
        })?;
        let origin = url.origin().ascii_serialization();
        if url.username() != "" || url.password().is_some() {
            return Err(ServiceError::InvalidRequest(
                "return_to must not carry credentials".into(),
            ));
        }
        if self.config.return_origins.contains(&origin) {
            Ok(())
        } else {
            Err(ServiceError::InvalidRequest(
                "return_to: that origin is not allowed (TOKENWARDEN_RETURN_ORIGINS)".into(),
            ))
        }
    }

    pub async fn create_connect_session(
        &self,
        caller: &Caller,
        req: NewConnectSession,
        ctx: &RequestContext,
    ) -> ServiceResult<CreatedConnectSession> {
        caller.require(Role::Connect)?;
        caller.require_app(req.app.as_str())?;
        let connection_id = req
            .connection_id
            .unwrap_or_else(|| ConnectionId::generate(&mut rand::thread_rng()));
        caller.require_connection(connection_id.as_str())?;
        if let Some(r) = &req.return_to {
            self.check_return_to(r)?;
        }
        let app = self
            .store
            .app_by_key(&caller.vault_id, &req.app)
            .await?
            .ok_or(ServiceError::NotFound("app"))?;
        if app.status == AppStatus::Blocked {
            return Err(ServiceError::AppBlocked);
        }
        // Reconnecting replaces a connection's tokens; it never moves a connection to
        // another app (a key scoped to one app could otherwise take over another's).
        if let Some(existing) = self
            .store
            .connection(&caller.vault_id, &connection_id)
            .await?
            && existing.app_id != app.id
        {
            return Err(ServiceError::Conflict(format!(
                "connection {connection_id} belongs to another app; delete it first or choose another connection_id"
            )));
        }
        let custom = self
            .store
            .provider(&caller.vault_id, &app.provider_key)
            .await?;
        let def = self
            .provider_definition(&app.provider_key, custom.as_ref().map(|p| p.spec.as_str()))?
            .with_params(&req.params)
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let dek = caller.data_key()?;
        let client_secret =
            self.open_client_secret(&dek, &app, custom.as_ref().map(|p| p.spec.as_str()))?;
        let vault = self
            .store
            .vault(&caller.vault_id)
            .await?
            .ok_or(ServiceError::NotFound("vault"))?;
        let sealing_key_id = KeyId(vault.dek_key_id);
        let private = dek.decrypt(
            &Binding::new(
                Purpose::SealingPrivateKey,
                &caller.vault_id,
                caller.vault_id.as_str(),
            ),
            vault.sealing_private_key.as_bytes(),
        )?;
        let sealing_public_key = SealingPrivateKey::from_bytes(sealing_key_id, private.as_bytes())?
            .public_key()
            .to_bytes();
        drop(private);
        drop(dek);

        let scopes = match req.scopes {
            Some(s) if !s.is_empty() => s,
            _ if !app.scopes.is_empty() => app.scopes.clone(),
            _ => Scopes::parse(def.default_scopes()).map_err(ServiceError::invalid)?,
        };
        let state = State::generate(&mut OsRng);
        let verifier = PkceVerifier::generate(&mut OsRng);
        let wants_nonce = def.is_oidc() && scopes.as_slice().iter().any(|s| s == "openid");
        let nonce = wants_nonce.then(|| Nonce::generate(&mut OsRng));
        let redirect_uri = self.redirect_uri(&app.id);
        let challenge = verifier.challenge();
        let url = authorization_url(
            &def,
            &AuthorizationRequest {
                client_id: &app.client_id,
                redirect_uri: &redirect_uri,
                scopes: scopes.as_slice(),
                state: &state,
                code_challenge: def.pkce().then_some(&challenge),
                nonce: nonce.as_ref(),
            },
        );

        let now = self.clock.now();
        let id = ConnectSessionId::generate(&mut rand::thread_rng());
        let secrets = SessionSecrets {
            client_secret: client_secret.expose_secret().to_owned(),
            code_verifier: verifier.expose_secret().to_owned(),
            nonce: nonce.as_ref().map(|n| n.expose_secret().to_owned()),
            client_id: app.client_id.clone(),
            provider: def.spec().clone(),
            sealing_key_id: sealing_key_id.0,
            sealing_public_key,
            params: req.params,
        };
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(&secrets).map_err(ServiceError::internal)?);
        let sealed = state_key(state.expose_secret()).encrypt(
            &Binding::new(Purpose::PendingConnect, &caller.vault_id, id.as_str()),
            &plain,
        );
        // The state is short-lived (RFC 9700); the link may be opened later, and
        // spending it gives the state a fresh lifetime from then.
        let expires_at = now + Duration::minutes(SESSION_LIFETIME_MINUTES);
        let link_expires_at = self.link_expiry(now);
        let link = crate::links::new_link(&caller.vault_id, &id, url.as_str(), link_expires_at);
        let session = ConnectSessionRecord {
            id: id.clone(),
            vault_id: caller.vault_id.clone(),
            app_id: app.id.clone(),
            connection_id: connection_id.clone(),
            state_hash: state_hash(state.expose_secret()),
            secrets: sealed.into(),
            scopes,
            return_to: req.return_to,
            status: ConnectStatus::Pending,
            error: None,
            created_by: caller.key_id.to_string(),
            created_at: now,
            expires_at,
            finished_at: None,
            link: Some(link.record),
        };
        let audit = record_for(caller, ctx, now, "connect_session.create", id.as_str());
        self.connect_store()
            .create_connect_session(session, audit)
            .await?;
        info!(vault.id = %caller.vault_id, app.key = %app.key, session.id = %id, "connect session created");
        Ok(CreatedConnectSession {
            id,
            connection_id,
            authorization_url: SecretString::from(url.to_string()),
            connect_link: SecretString::from(format!(
                "{}/connect/{}",
                self.config.public_url,
                link.token.expose_secret()
            )),
            connect_link_expires_at: link_expires_at,
            expires_at,
        })
    }

    pub async fn connect_session_status(
        &self,
        caller: &Caller,
        id: &ConnectSessionId,
    ) -> ServiceResult<ConnectSessionView> {
        caller.require(Role::Connect)?;
        let s = self
            .store
            .connect_session(&caller.vault_id, id)
            .await?
            .ok_or(ServiceError::NotFound("connect session"))?;
        caller.require_connection(s.connection_id.as_str())?;
        if !caller.scope.is_unlimited() {
            let app = self
                .store
                .list_apps(&caller.vault_id)
                .await?
                .into_iter()
                .find(|a| a.id == s.app_id)
                .ok_or(ServiceError::NotFound("connect session"))?;
            caller.see_app(app.key.as_str(), "connect session")?;
        }
        let now = self.clock.now();
        // An unspent link keeps the session usable after its state's own time is up:
        // spending the link starts the state's lifetime afresh.
        let link_open = s
            .link
            .as_ref()
            .is_some_and(|l| l.spent_at.is_none() && l.expires_at > now);
        let status = match s.status {
            ConnectStatus::Pending if link_open => "pending",
            ConnectStatus::Pending | ConnectStatus::Exchanging if s.expires_at <= now => "expired",
            ConnectStatus::Pending | ConnectStatus::Exchanging => "pending",
            ConnectStatus::Completed => "completed",
            ConnectStatus::Failed => "failed",
        };
        Ok(ConnectSessionView {
            id: s.id,
            status,
            connection_id: s.connection_id,
            error: s.error,
            expires_at: s.expires_at,
        })
    }
}
