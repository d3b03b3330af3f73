//! The refresh's provider side: one refresh grant at the provider (retried only
//! while no attempt can have reached it), who holds the data key for it, and how
//! its failures are told apart.

use tokenwarden_crypto::{DataKey, Purpose};
use tokenwarden_domain::Scopes;
use tokenwarden_oauth::{ClientCredentials, RefreshToken, Repeat, Rotation, TokenError, refresh};
use tokenwarden_store::{Actor, ConnectionForToken};
use tracing::warn;

use crate::Caller;
use crate::token_set::TokenSet;
use crate::{ServiceError, ServiceResult, Services};

/// Who holds the vault's data key for a refresh: an API key's caller, or the server's
/// master key (a managed vault's background refresh, with nobody present).
#[derive(Clone, Copy)]
pub(crate) enum KeyHolder<'a> {
    Key(&'a Caller),
    Master,
}

impl KeyHolder<'_> {
    pub(crate) fn actor(&self) -> Actor {
        match self {
            KeyHolder::Key(caller) => Actor::ApiKey(caller.key_id.clone()),
            // The server acting on its own: no key, no account.
            KeyHolder::Master => Actor::Anonymous,
        }
    }
}

impl Services {
    /// One refresh at the provider, retried only after failures before the request left
    /// (see [`tokenwarden_oauth::RetryPolicy::run_refresh`]).
    pub(crate) async fn call_provider_refresh(
        &self,
        dek: &DataKey,
        row: &ConnectionForToken,
    ) -> Result<(TokenSet, Scopes), RefreshFailure> {
        let old = self.open_token_set(dek, row).await?;
        let def = self
            .provider_definition(&row.app.provider_key, row.custom_provider_spec.as_deref())?
            .with_params(&old.params)
            .map_err(ServiceError::internal)?;
        let credentials = ClientCredentials {
            client_id: row.app.client_id.clone(),
            client_secret: self.open_client_secret(
                dek,
                &row.app,
                row.custom_provider_spec.as_deref(),
            )?,
        };
        let Some(refresh_token) = old.refresh_token.clone() else {
            return Err(RefreshFailure::Other(ServiceError::Conflict(
                "the connection has no refresh token".into(),
            )));
        };
        let refresh_token = RefreshToken::new(refresh_token);
        let scopes: Vec<String> = if def.refresh_requires_scopes() {
            row.connection.scopes.as_slice().to_vec()
        } else {
            Vec::new()
        };
        // Retried only while no attempt can have reached the provider: one that rotates
        // refresh tokens would answer a repeat of a lost attempt with `invalid_grant`.
        // A provider whose catalog entry says it never rotates keeps the token it was
        // sent, so any transient failure may be repeated there.
        let repeat = if def.spec().refresh.rotates == Rotation::Never {
            Repeat::AnyTransient
        } else {
            Repeat::UnsentOnly
        };
        let response = self
            .oauth
            .retry
            .run_with(repeat, || refresh(&self.oauth.http, &def, &credentials, &refresh_token, &scopes, self.clock.now()))
            .await
            .map_err(|failure| match failure.error {
                TokenError::InvalidGrant(_) if failure.grant_refused() => RefreshFailure::InvalidGrant,
                TokenError::InvalidGrant(_) => {
                    // An earlier attempt of this cycle may have reached the provider and
                    // rotated the token: the refusal says nothing about the grant, and
                    // marking the connection would destroy a healthy one.
                    warn!(connection.id = %row.connection.id, "invalid_grant after a transient failure of the same refresh: treated as provider unavailable, the connection and its tokens are kept");
                    RefreshFailure::Other(ServiceError::ProviderUnavailable {
                        retry_after_secs: Some(1),
                    })
                }
                e if e.is_transient() => {
                    warn!(error = %e, connection.id = %row.connection.id, "provider unavailable for refresh");
                    RefreshFailure::Other(ServiceError::ProviderUnavailable {
                        retry_after_secs: e.retry_after().map(|d| d.as_secs().max(1)),
                    })
                }
                e => {
                    warn!(error = %e, connection.id = %row.connection.id, "provider refused the refresh");
                    let code = e
                        .provider_error()
                        .map_or_else(|| "unexpected response".to_owned(), |p| p.error.clone());
                    RefreshFailure::Other(ServiceError::ProviderError(code))
                }
            })?;
        let scopes = match &response.scopes {
            Some(s) => Scopes::parse(s).unwrap_or_else(|_| row.connection.scopes.clone()),
            None => row.connection.scopes.clone(),
        };
        let mut extras = old.extras.clone();
        extras.extend(response.extras.clone());
        let new_set = TokenSet {
            access_token: response.access_token.clone(),
            token_type: response.token_type.clone(),
            // RFC 6749 §6: no new refresh token means keep the old one.
            refresh_token: response
                .refresh_token
                .as_ref()
                .map(|r| r.expose_secret().to_owned())
                .or_else(|| old.refresh_token.clone()),
            expires_at: response.expires_at,
            scopes: scopes.as_slice().to_vec(),
            id_token: response
                .id_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned())
                .or_else(|| old.id_token.clone()),
            extras,
            params: old.params.clone(),
        };
        Ok((new_set, scopes))
    }
}

/// The metric label of who refreshed.
pub(crate) fn holder_kind(actor: &Actor) -> &'static str {
    match actor {
        Actor::Anonymous => "server",
        _ => "api_key",
    }
}

impl Services {
    /// The vault's data key as `holder` opens it.
    pub(crate) fn holder_data_key(
        &self,
        holder: KeyHolder<'_>,
        row: &ConnectionForToken,
    ) -> ServiceResult<DataKey> {
        match holder {
            KeyHolder::Key(caller) => caller.data_key(),
            KeyHolder::Master => {
                let (Some(master), Some(slot)) = (&self.master_key, &row.master_slot) else {
                    return Err(ServiceError::ManagedUnavailable);
                };
                let vault = &row.connection.vault_id;
                master
                    .kek()
                    .unwrap(
                        &tokenwarden_crypto::Binding::new(
                            Purpose::MasterSlot,
                            vault,
                            vault.as_str(),
                        ),
                        slot.as_bytes(),
                    )
                    .map_err(ServiceError::from)
            }
        }
    }
}

pub(crate) enum RefreshFailure {
    InvalidGrant,
    Other(ServiceError),
}

impl From<ServiceError> for RefreshFailure {
    fn from(e: ServiceError) -> Self {
        RefreshFailure::Other(e)
    }
}
