//! The OAuth callback (docs/design.md, "Connect"): it runs with nobody present, opens
//! only what the state's key seals, checks the provider's answer and seals the new
//! tokens to the vault's public key. It never sees the DEK.

use std::collections::BTreeMap;

use secrecy::SecretString;
use tokenwarden_crypto::{Binding, KeyId, Purpose, SealingPublicKey};
use tokenwarden_domain::{AppId, ConnectionId, Scopes};
use tokenwarden_oauth::{
    AuthorizationCode, ClientCredentials, IdToken, Nonce, PkceVerifier, ProviderDefinition,
    check_response_issuer, exchange_code,
};
use tokenwarden_store::{
    AppStatus, ConnectStatus, ConnectionUpsert, PendingConnect, TokenFormat, TokenWrite,
};
use tracing::{info, warn};

use crate::audit::RequestContext;
use crate::session_secrets::{SessionSecrets, connect_audit, state_hash, state_key, token_binding};
use crate::token_set::TokenSet;
use crate::{ServiceError, Services};

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
impl Services {
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
                self.connect_store()
                    .fail_connect(&session.id, error, at, audit)
                    .await
                    .map_err(ServiceError::from)?;
                warn!(session.id = %session.id, error, "connect failed");
                self.emit(vec![crate::lifecycle::new_event(
                    session.vault_id.clone(),
                    tokenwarden_webhooks::EventType::ConnectSessionFailed,
                    serde_json::json!({
                        "connect_session_id": session.id.as_str(),
                        "connection_id": session.connection_id.as_str(),
                        "error": error,
                    }),
                    at,
                )])
                .await;
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
                session.secrets.as_bytes(),
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
            access_token: response.access_token.clone(),
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
        let managed = match self.vaults_store().vault(&session.vault_id).await {
            Ok(vault) => vault.is_some_and(|v| v.managed),
            Err(e) => {
                warn!(error = %e, "reading the vault failed");
                return Err("internal");
            }
        };
        let schedule = self.schedule_tokens(
            &def.spec().refresh,
            set.expires_at,
            set.refresh_token.is_some(),
            managed,
            at,
        );
        let events = self.upsert_events(
            &session.vault_id,
            &session.connection_id,
            app,
            set.expires_at,
            at,
        );
        self.connect_store()
            .finish_connect(
                &session.id,
                ConnectionUpsert {
                    vault_id: session.vault_id.clone(),
                    id: session.connection_id.clone(),
                    app_id: app.id.clone(),
                    tokens: TokenWrite {
                        token_set: sealed.into(),
                        token_format: TokenFormat::Sealed,
                        expires_at: set.expires_at,
                        has_refresh: set.refresh_token.is_some(),
                        scopes,
                        at,
                        schedule,
                    },
                    events: Some(events),
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
