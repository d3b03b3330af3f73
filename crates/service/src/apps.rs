//! OAuth apps: a provider plus client credentials, the secret under the vault DEK.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokenwarden_crypto::{Binding, DataKey, Purpose};
use tokenwarden_domain::{AppId, AppKey, Role, Scopes, VaultId};
use tokenwarden_store::{Actor, AppRecord, AppStatus, AppUpdate, Ciphertext};
use tracing::info;

use crate::audit::{RequestContext, record};
use crate::{Caller, ServiceError, ServiceResult, Services};

/// Longest client id or secret accepted.
const MAX_CREDENTIAL_LEN: usize = 2048;

/// A validated `POST /v1/apps`.
#[derive(Debug)]
pub struct NewApp {
    pub key: AppKey,
    pub provider: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Scopes,
}

fn check_credential(what: &str, value: &str) -> ServiceResult<()> {
    if value.is_empty() || value.len() > MAX_CREDENTIAL_LEN || value.chars().any(char::is_control) {
        return Err(ServiceError::InvalidRequest(format!(
            "{what} must be 1 to {MAX_CREDENTIAL_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// What a client secret is bound to besides its app: the app's provider key and, for a
/// vault's own provider, a digest of its definition. An operator who points the app at
/// another provider, or edits the custom provider's endpoints in the database, makes
/// the secret unreadable instead of sending it (and refresh tokens) elsewhere.
pub(crate) fn provider_context(provider_key: &str, custom_spec: Option<&str>) -> String {
    match custom_spec {
        Some(spec) => {
            let digest = Sha256::digest(spec.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{provider_key}#{hex}")
        }
        None => format!("{provider_key}#builtin"),
    }
}

pub(crate) fn client_secret_binding<'a>(
    vault: &'a VaultId,
    app: &'a AppId,
    provider_context: &'a str,
) -> Binding<'a> {
    Binding::new(Purpose::ClientSecret, vault, app.as_str()).within(provider_context)
}

/// A validated `PATCH /v1/apps/{key}`; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AppChanges {
    pub status: Option<AppStatus>,
    pub scopes: Option<Scopes>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

/// An app as shown (never its secret).
#[derive(Debug, Clone)]
pub struct AppView {
    pub record: AppRecord,
    pub redirect_uri: String,
}

impl Services {
    pub(crate) fn redirect_uri(&self, app: &AppId) -> String {
        format!("{}/v1/oauth/callback/{app}", self.config.public_url)
    }

    fn view(&self, record: AppRecord) -> AppView {
        AppView {
            redirect_uri: self.redirect_uri(&record.id),
            record,
        }
    }

    /// Fails unless the definition the connection's row names is the one its app's
    /// client secret was encrypted for (see [`provider_context`]).
    pub(crate) fn check_definition_approved(
        &self,
        dek: &DataKey,
        row: &tokenwarden_store::ConnectionForToken,
    ) -> ServiceResult<()> {
        self.open_client_secret(dek, &row.app, row.custom_provider_spec.as_deref())
            .map(drop)
            .inspect_err(|_| {
                tracing::warn!(
                    app.key = %row.app.key,
                    "the app's provider definition is not the one it was created with; refusing to use it"
                );
            })
    }

    pub(crate) fn open_client_secret(
        &self,
        dek: &DataKey,
        app: &AppRecord,
        custom_spec: Option<&str>,
    ) -> ServiceResult<SecretString> {
        let context = provider_context(
            &app.provider_key,
            self.approved_custom_spec(&app.provider_key, custom_spec),
        );
        let plain = dek.decrypt(
            &client_secret_binding(&app.vault_id, &app.id, &context),
            app.client_secret.as_bytes(),
        )?;
        let text = std::str::from_utf8(plain.as_bytes()).map_err(ServiceError::internal)?;
        Ok(SecretString::from(text.to_owned()))
    }

    pub async fn create_app(
        &self,
        caller: &Caller,
        new: NewApp,
        ctx: &RequestContext,
    ) -> ServiceResult<AppView> {
        caller.require(Role::Admin)?;
        caller.require_app(new.key.as_str())?;
        check_credential("client_id", &new.client_id)?;
        check_credential("client_secret", new.client_secret.expose_secret())?;
        let custom = self
            .apps_store()
            .provider(&caller.vault_id, &new.provider)
            .await?;
        if custom.is_none() && !self.oauth.builtins.contains_key(&new.provider) {
            return Err(ServiceError::InvalidRequest(format!(
                "provider: no provider {:?} is built in or defined in this vault",
                new.provider
            )));
        }
        let dek = caller.data_key()?;
        let now = self.clock.now();
        let id = AppId::generate(&mut rand::thread_rng());
        let context = provider_context(
            &new.provider,
            self.approved_custom_spec(&new.provider, custom.as_ref().map(|p| p.spec.as_str())),
        );
        let client_secret = dek.encrypt(
            &client_secret_binding(&caller.vault_id, &id, &context),
            new.client_secret.expose_secret().as_bytes(),
        );
        let record = AppRecord {
            id: id.clone(),
            vault_id: caller.vault_id.clone(),
            key: new.key.clone(),
            provider_key: new.provider,
            client_id: new.client_id,
            client_secret: client_secret.into(),
            scopes: new.scopes,
            status: AppStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let audit = record_for(caller, ctx, now, "app.create", new.key.as_str());
        self.apps_store()
            .create_app(record.clone(), audit)
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::Conflict(_) => {
                    ServiceError::Conflict(format!("an app {} already exists", new.key))
                }
                other => other,
            })?;
        info!(vault.id = %caller.vault_id, app.key = %record.key, app.id = %id, "app created");
        Ok(self.view(record))
    }

    pub async fn list_apps(&self, caller: &Caller) -> ServiceResult<Vec<AppView>> {
        let apps = self.apps_store().list_apps(&caller.vault_id).await?;
        Ok(apps
            .into_iter()
            .filter(|a| caller.scope.allows_app(a.key.as_str()))
            .map(|a| self.view(a))
            .collect())
    }

    pub async fn update_app(
        &self,
        caller: &Caller,
        key: &AppKey,
        changes: AppChanges,
        ctx: &RequestContext,
    ) -> ServiceResult<AppView> {
        let AppChanges {
            status,
            scopes,
            client_id,
            client_secret,
        } = changes;
        caller.require(Role::Admin)?;
        caller.require_app(key.as_str())?;
        if let Some(id) = &client_id {
            check_credential("client_id", id)?;
        }
        let current = self
            .store
            .app_by_key(&caller.vault_id, key)
            .await?
            .ok_or(ServiceError::NotFound("app"))?;
        let client_secret = match client_secret {
            Some(secret) => {
                check_credential("client_secret", secret.expose_secret())?;
                let custom = self
                    .store
                    .provider(&caller.vault_id, &current.provider_key)
                    .await?;
                let context = provider_context(
                    &current.provider_key,
                    self.approved_custom_spec(
                        &current.provider_key,
                        custom.as_ref().map(|p| p.spec.as_str()),
                    ),
                );
                let dek = caller.data_key()?;
                Some(dek.encrypt(
                    &client_secret_binding(&caller.vault_id, &current.id, &context),
                    secret.expose_secret().as_bytes(),
                ))
            }
            None => None,
        };
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "app.update", key.as_str());
        let updated = self
            .store
            .update_app(
                &caller.vault_id,
                key,
                AppUpdate {
                    status,
                    scopes,
                    client_id,
                    client_secret: client_secret.map(Ciphertext::from),
                },
                now,
                audit,
            )
            .await?
            .ok_or(ServiceError::NotFound("app"))?;
        info!(vault.id = %caller.vault_id, app.key = %key, status = updated.status.as_str(), "app updated");
        Ok(self.view(updated))
    }

    pub async fn delete_app(
        &self,
        caller: &Caller,
        key: &AppKey,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        caller.require(Role::Admin)?;
        caller.require_app(key.as_str())?;
        let now = self.clock.now();
        let audit = record_for(caller, ctx, now, "app.delete", key.as_str());
        match self
            .apps_store()
            .delete_app(&caller.vault_id, key, audit)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::NotFound("app")),
            Err(e) => Err(match ServiceError::from(e) {
                ServiceError::Conflict(_) => ServiceError::Conflict(
                    "the app still has connections; delete them first".into(),
                ),
                other => other,
            }),
        }
    }
}

pub(crate) fn record_for(
    caller: &Caller,
    ctx: &RequestContext,
    now: chrono::DateTime<chrono::Utc>,
    action: &'static str,
    target: &str,
) -> tokenwarden_store::NewAuditRecord {
    record(
        ctx,
        now,
        Some(&caller.vault_id),
        Actor::ApiKey(caller.key_id.clone()),
        action,
        Some(target.to_owned()),
        "success",
    )
}
