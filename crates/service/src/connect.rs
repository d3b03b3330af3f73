//! Connect sessions and the OAuth callback (design.md, "Connect").
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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenwarden_crypto::{Binding, DataKey, KeyId, Purpose, SealingPrivateKey, SealingPublicKey};
use tokenwarden_domain::{AppId, AppKey, ConnectSessionId, ConnectionId, Role, Scopes};
use tokenwarden_oauth::{
    AuthorizationCode, AuthorizationRequest, ClientCredentials, IdToken, Nonce, PkceVerifier,
    ProviderDefinition, ProviderSpec, State, authorization_url, check_response_issuer,
    exchange_code,
};
use tokenwarden_store::{
    Actor, AppStatus, ConnectSessionRecord, ConnectStatus, ConnectionUpsert, PendingConnect,
    TokenFormat, TokenWrite,
};
use tracing::{info, warn};
use url::Url;
use zeroize::Zeroize;

use crate::apps::record_for;
use crate::audit::{RequestContext, record};
use crate::token_set::TokenSet;
use crate::{Caller, ServiceError, ServiceResult, Services};

/// How long a connect session (its state) stays usable: RFC 9700 wants it short.
pub const SESSION_LIFETIME_MINUTES: i64 = 10;

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

/// What the callback query carries. `code` and `state` are secrets: `Debug` hides them.
#[derive(Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    /// The request's cookies (name, value): a link-started flow needs its binding one.
    pub cookies: Vec<(String, String)>,
    /// The redirect's other query parameters; those the provider definition names in
    /// `redirect_extras` are kept with the connection.
    pub extra: BTreeMap<String, String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

/// How a callback ended, for the page or redirect the browser gets.
#[derive(Debug)]
pub enum CallbackOutcome {
    Connected {
        connection_id: ConnectionId,
        return_to: Option<String>,
    },
    Failed {
        /// A stable code: `access_denied`, `iss_mismatch`, `exchange_failed`, ...
        error: &'static str,
        return_to: Option<String>,
    },
}

/// A callback that matches no usable session: answered with an error page, and nothing
/// was changed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackRejected {
    #[error("the request carries no state")]
    MissingState,
    #[error("this sign-in link is unknown, was already used, or belongs to another app")]
    UnknownState,
    #[error("this sign-in attempt has expired; start again")]
    Expired,
    #[error(
        "this sign-in was started from a connect link in another browser; open the link in this browser instead"
    )]
    WrongBrowser,
    /// RFC 6749 §3.1: response parameters "MUST NOT be included more than once"; a
    /// repeated `state` or `code` could make two checks read different values.
    #[error("the response repeats the `{0}` parameter")]
    RepeatedParameter(&'static str),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// What the state-derived key protects. Besides the secrets, everything the callback
/// must trust is here rather than read back from the database, which the operator could
/// edit: the vault's public sealing key (derived from the private key the key holder
/// unlocked), the provider definition and the client id.
#[derive(Serialize, Deserialize)]
struct SessionSecrets {
    client_secret: String,
    code_verifier: String,
    nonce: Option<String>,
    client_id: String,
    provider: ProviderSpec,
    sealing_key_id: u32,
    sealing_public_key: Vec<u8>,
    /// The connection's URL parameters; `provider` already has them filled in.
    #[serde(default)]
    params: BTreeMap<String, String>,
}

impl Drop for SessionSecrets {
    fn drop(&mut self) {
        self.client_secret.zeroize();
        self.code_verifier.zeroize();
    }
}

fn state_hash(state: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/state/v1\0");
    h.update(state.as_bytes());
    h.finalize().to_vec()
}

/// The audit record of a callback: nobody is authenticated there, so the actor is
/// anonymous and the session names the vault and connection.
fn connect_audit(
    ctx: &RequestContext,
    at: DateTime<Utc>,
    session: &ConnectSessionRecord,
    outcome: &'static str,
) -> tokenwarden_store::NewAuditRecord {
    record(
        ctx,
        at,
        Some(&session.vault_id),
        Actor::Anonymous,
        "connection.connect",
        Some(session.connection_id.to_string()),
        outcome,
    )
}

fn state_key(state: &str) -> DataKey {
    DataKey::derive_from_secret(state.as_bytes(), b"tokenwarden/connect-session/v1")
}

/// Where a token set belongs: its connection, within its app — so moving a connection
/// to another app in the database makes its tokens unreadable rather than sending them
/// to that app's provider.
pub(crate) fn token_binding<'a>(
    purpose: Purpose,
    vault: &'a tokenwarden_domain::VaultId,
    connection: &'a ConnectionId,
    app: &'a AppId,
) -> Binding<'a> {
    Binding::new(purpose, vault, connection.as_str()).within(app.as_str())
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
            &vault.sealing_private_key,
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
            secrets: sealed,
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
        self.store.create_connect_session(session, audit).await?;
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

    /// `GET /v1/oauth/callback/{app_id}`.
    pub async fn oauth_callback(
        &self,
        app_path: &str,
        params: CallbackParams,
        ctx: &RequestContext,
    ) -> Result<CallbackOutcome, CallbackRejected> {
        let state = params.state.clone().ok_or(CallbackRejected::MissingState)?;
        let pending = self
            .store
            .pending_connect(&state_hash(&state))
            .await
            .map_err(ServiceError::from)?
            .ok_or(CallbackRejected::UnknownState)?;
        let session = &pending.session;
        let now = self.clock.now();
        // Mix-up defence (RFC 9700 §4.4): a response must come back on the callback
        // path of the app its session was started for.
        if AppId::parse(app_path).ok().as_ref() != Some(&session.app_id) {
            warn!(session.id = %session.id, "callback arrived on another app's path");
            return Err(CallbackRejected::UnknownState);
        }
        if session.status != ConnectStatus::Pending {
            return Err(CallbackRejected::UnknownState);
        }
        if session.expires_at <= now {
            return Err(CallbackRejected::Expired);
        }
        // Checked before the state is consumed, so a callback from the wrong browser
        // spends nothing and the right browser can still finish.
        if !crate::links::binding_holds(session, &params.cookies, self.links_secure()) {
            warn!(session.id = %session.id, "callback of a link-started flow without its binding cookie");
            return Err(CallbackRejected::WrongBrowser);
        }
        // Consume the state: from here on exactly one request owns this session.
        if !self
            .store
            .begin_exchange(&session.id, now)
            .await
            .map_err(ServiceError::from)?
        {
            return Err(CallbackRejected::UnknownState);
        }
        let return_to = session.return_to.clone();
        match self.complete_callback(&pending, &state, params, ctx).await {
            Ok(connection_id) => Ok(CallbackOutcome::Connected {
                connection_id,
                return_to,
            }),
            Err(error) => {
                let at = self.clock.now();
                let audit = connect_audit(ctx, at, session, "failed");
                self.store
                    .fail_connect(&session.id, error, at, audit)
                    .await
                    .map_err(ServiceError::from)?;
                warn!(session.id = %session.id, error, "connect failed");
                Ok(CallbackOutcome::Failed { error, return_to })
            }
        }
    }

    /// Everything after the state is consumed. Errors are stable codes stored on the
    /// session (never a provider's free text).
    async fn complete_callback(
        &self,
        pending: &PendingConnect,
        state: &str,
        params: CallbackParams,
        ctx: &RequestContext,
    ) -> Result<ConnectionId, &'static str> {
        let CallbackParams {
            code,
            iss,
            error: provider_error,
            extra,
            ..
        } = params;
        let session = &pending.session;
        let app = &pending.app;
        let plain = state_key(state)
            .decrypt(
                &Binding::new(
                    Purpose::PendingConnect,
                    &session.vault_id,
                    session.id.as_str(),
                ),
                &session.secrets,
            )
            .map_err(|_| "session_unreadable")?;
        let secrets: SessionSecrets =
            serde_json::from_slice(plain.as_bytes()).map_err(|_| "session_unreadable")?;
        drop(plain);
        let def = ProviderDefinition::from_spec(secrets.provider.clone(), &self.oauth.policy)
            .map_err(|_| "provider_unknown")?;
        // RFC 9207: check iss before looking at anything else in the response.
        check_response_issuer(&def, iss.as_deref()).map_err(|_| "iss_mismatch")?;
        if let Some(e) = provider_error {
            return Err(if e == "access_denied" {
                "access_denied"
            } else {
                "provider_error"
            });
        }
        let code = code.ok_or("missing_code")?;
        if app.status == AppStatus::Blocked {
            return Err("app_blocked");
        }
        let verifier =
            PkceVerifier::parse(secrets.code_verifier.clone()).map_err(|_| "session_unreadable")?;
        let credentials = ClientCredentials {
            client_id: secrets.client_id.clone(),
            client_secret: SecretString::from(secrets.client_secret.clone()),
        };
        let redirect_uri = self.redirect_uri(&app.id);
        let code = AuthorizationCode::new(code);
        let now = self.clock.now();
        let response = exchange_code(
            &self.oauth.http,
            &def,
            &credentials,
            &code,
            &redirect_uri,
            Some(&verifier),
            now,
        )
        .await
        .map_err(|e| {
            warn!(error = %e, app.key = %app.key, "code exchange failed");
            "exchange_failed"
        })?;

        if let Some(id_token) = &response.id_token {
            let nonce = secrets.nonce.clone().map(Nonce::new);
            self.oauth
                .id_tokens
                .verify(
                    &def,
                    &secrets.client_id,
                    id_token,
                    nonce.as_ref(),
                    self.clock.now(),
                )
                .await
                .map_err(|e| {
                    warn!(error = %e, app.key = %app.key, "id_token rejected");
                    "invalid_id_token"
                })?;
        }

        let scopes = match &response.scopes {
            Some(s) => Scopes::parse(s).unwrap_or_else(|_| session.scopes.clone()),
            None => session.scopes.clone(),
        };
        let mut extras = response.extras.clone();
        for name in def.redirect_extras() {
            if let Some(value) = extra.get(name).filter(|v| v.len() <= 256) {
                extras.insert(name.clone(), serde_json::Value::String(value.clone()));
            }
        }
        let set = TokenSet {
            access_token: response.access_token.expose_secret().to_owned(),
            token_type: response.token_type.clone(),
            refresh_token: response
                .refresh_token
                .as_ref()
                .map(|r| r.expose_secret().to_owned()),
            expires_at: response.expires_at,
            scopes: scopes.as_slice().to_vec(),
            id_token: response
                .id_token
                .as_ref()
                .map(|t: &IdToken| t.expose_secret().to_owned()),
            extras,
            params: secrets.params.clone(),
        };
        let public = SealingPublicKey::from_bytes(
            KeyId(secrets.sealing_key_id),
            &secrets.sealing_public_key,
        )
        .map_err(|_| "vault_key_unreadable")?;
        let sealed = public
            .seal(
                &token_binding(
                    Purpose::SealedTokenSet,
                    &session.vault_id,
                    &session.connection_id,
                    &app.id,
                ),
                &set.to_bytes().map_err(|_| "internal")?,
            )
            .map_err(|_| "internal")?;
        let at = self.clock.now();
        let audit = connect_audit(ctx, at, session, "success");
        self.store
            .finish_connect(
                &session.id,
                ConnectionUpsert {
                    vault_id: session.vault_id.clone(),
                    id: session.connection_id.clone(),
                    app_id: app.id.clone(),
                    tokens: TokenWrite {
                        token_set: sealed,
                        token_format: TokenFormat::Sealed,
                        expires_at: set.expires_at,
                        has_refresh: set.refresh_token.is_some(),
                        scopes,
                        at,
                    },
                },
                audit,
            )
            .await
            .map_err(|e| match e {
                tokenwarden_store::StoreError::Conflict(_) => "connection_conflict",
                e => {
                    warn!(error = %e, "storing the connection failed");
                    "internal"
                }
            })?;
        info!(vault.id = %session.vault_id, connection.id = %session.connection_id, app.key = %app.key, "connection connected");
        Ok(session.connection_id.clone())
    }
}
