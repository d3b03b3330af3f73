//! Provider definitions: the built-in catalog and each vault's custom ones.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tokenwarden_domain::Role;
use tokenwarden_oauth::{
    ClientAuth, HttpPolicy, IdTokenVerifier, OutboundClient, ProviderDefinition, ProviderSpec,
    RetryPolicy, builtin_providers_with, discover,
};
use tokenwarden_store::{Actor, ProviderRecord};
use tracing::info;
use url::Url;

use crate::audit::{RequestContext, record};
use crate::{Caller, ServiceError, ServiceResult, Services};

/// Outbound OAuth machinery shared by every request.
pub(crate) struct OAuthRuntime {
    pub policy: HttpPolicy,
    pub http: OutboundClient,
    /// The API proxy's client: the same policy with the proxy's timeouts and resolver.
    pub proxy_http: OutboundClient,
    pub id_tokens: IdTokenVerifier,
    pub retry: RetryPolicy,
    pub builtins: BTreeMap<String, ProviderDefinition>,
}

impl OAuthRuntime {
    pub(crate) fn new(
        allow_loopback: bool,
        extra: Vec<ProviderSpec>,
        proxy: &crate::ProxySettings,
    ) -> ServiceResult<Self> {
        let policy = HttpPolicy {
            allow_loopback,
            // Bounded so that all retries of a refresh end well inside its lease.
            timeout: Duration::from_secs(10),
            ..HttpPolicy::default()
        };
        let http = policy.clone().build().map_err(ServiceError::internal)?;
        let mut builtins = BTreeMap::new();
        for def in builtin_providers_with(&policy).map_err(ServiceError::internal)? {
            builtins.insert(def.key().as_str().to_owned(), def);
        }
        for spec in extra {
            let def =
                ProviderDefinition::from_spec(spec, &policy).map_err(ServiceError::internal)?;
            builtins.insert(def.key().as_str().to_owned(), def);
        }
        Ok(Self {
            id_tokens: IdTokenVerifier::new(http.clone(), Duration::from_secs(600)),
            policy,
            http,
            proxy_http: proxy.client(allow_loopback)?,
            retry: RetryPolicy::default(),
            builtins,
        })
    }
}

/// A provider as listed: built in or the vault's own.
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub definition: ProviderDefinition,
    pub builtin: bool,
}

/// What `POST /v1/providers` carries: either `issuer` (OpenID discovery; the other
/// fields given override what discovery says) or explicit endpoints.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    /// Catalog key, `[a-z0-9][a-z0-9_-]{0,62}`.
    pub key: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// An OpenID issuer to discover the endpoints from.
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub authorization_url: Option<Url>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub token_url: Option<Url>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub revocation_url: Option<Url>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub userinfo_url: Option<Url>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub jwks_uri: Option<Url>,
    /// The API base URL the proxy may call.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub api_base_url: Option<Url>,
    #[serde(default)]
    pub scope_separator: Option<String>,
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    /// `basic` or `post`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub client_auth: Option<ClientAuth>,
    #[serde(default)]
    pub pkce: Option<bool>,
    #[serde(default)]
    pub authorize_params: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub iss_parameter_supported: Option<bool>,
    #[serde(default)]
    pub refresh_requires_scopes: Option<bool>,
}

impl ProviderRequest {
    fn apply(self, mut spec: ProviderSpec) -> ProviderSpec {
        if let Some(v) = self.display_name {
            spec.display_name = v;
        }
        if let Some(v) = self.authorization_url {
            spec.authorization_url = v;
        }
        if let Some(v) = self.token_url {
            spec.token_url = v;
        }
        if self.revocation_url.is_some() {
            spec.revocation_url = self.revocation_url;
        }
        if self.userinfo_url.is_some() {
            spec.userinfo_url = self.userinfo_url;
        }
        if self.jwks_uri.is_some() {
            spec.jwks_uri = self.jwks_uri;
        }
        if let Some(v) = self.api_base_url {
            spec.api_base_urls = vec![v];
        }
        if let Some(v) = self.scope_separator {
            spec.scope_separator = v;
        }
        if let Some(v) = self.default_scopes {
            spec.default_scopes = v;
        }
        if let Some(v) = self.client_auth {
            spec.client_auth = v;
        }
        if let Some(v) = self.pkce {
            spec.pkce = v;
        }
        if let Some(v) = self.authorize_params {
            spec.authorize_params = v;
        }
        if let Some(v) = self.iss_parameter_supported {
            spec.iss_parameter_supported = v;
        }
        if let Some(v) = self.refresh_requires_scopes {
            spec.refresh_requires_scopes = v;
        }
        spec
    }
}

impl Services {
    /// Resolves a provider key for a vault: a custom spec found beside the app, else
    /// the built-in catalog.
    /// A vault's own definition of `key`, unless `key` names a built-in provider: the
    /// API refuses custom providers named like built-in ones, so such a row was
    /// written around it (in the database) and must never shadow the built-in one.
    pub(crate) fn approved_custom_spec<'a>(
        &self,
        key: &str,
        custom_spec: Option<&'a str>,
    ) -> Option<&'a str> {
        if custom_spec.is_some() && self.oauth.builtins.contains_key(key) {
            tracing::warn!(
                provider.key = key,
                "a custom provider row shadows a built-in provider; ignoring it"
            );
            return None;
        }
        custom_spec
    }

    pub(crate) fn provider_definition(
        &self,
        key: &str,
        custom_spec: Option<&str>,
    ) -> ServiceResult<ProviderDefinition> {
        if let Some(spec) = self.approved_custom_spec(key, custom_spec) {
            return ProviderDefinition::from_json(spec, &self.oauth.policy)
                .map_err(ServiceError::internal);
        }
        self.oauth
            .builtins
            .get(key)
            .cloned()
            .ok_or(ServiceError::NotFound("provider"))
    }

    pub async fn list_providers(&self, caller: &Caller) -> ServiceResult<Vec<ProviderView>> {
        let _ = caller;
        let mut out: Vec<ProviderView> = self
            .oauth
            .builtins
            .values()
            .map(|d| ProviderView {
                definition: d.clone(),
                builtin: true,
            })
            .collect();
        for rec in self.apps_store().list_providers(&caller.vault_id).await? {
            if self
                .approved_custom_spec(&rec.key, Some(&rec.spec))
                .is_none()
            {
                continue;
            }
            out.push(ProviderView {
                definition: ProviderDefinition::from_json(&rec.spec, &self.oauth.policy)
                    .map_err(ServiceError::internal)?,
                builtin: false,
            });
        }
        Ok(out)
    }

    /// Adds a custom provider to the caller's vault (admin).
    pub async fn create_provider(
        &self,
        caller: &Caller,
        request: ProviderRequest,
        ctx: &RequestContext,
    ) -> ServiceResult<ProviderDefinition> {
        caller.require(Role::Admin)?;
        let base = match &request.issuer {
            Some(issuer) => {
                let metadata = discover(&self.oauth.http, issuer).await.map_err(|e| {
                    ServiceError::InvalidRequest(format!("OpenID discovery failed: {e}"))
                })?;
                let name = request
                    .display_name
                    .clone()
                    .unwrap_or_else(|| request.key.clone());
                metadata.into_spec(&request.key, &name)
            }
            None => {
                let (Some(authorization_url), Some(token_url)) =
                    (request.authorization_url.clone(), request.token_url.clone())
                else {
                    return Err(ServiceError::InvalidRequest(
                        "give either issuer (OpenID discovery) or authorization_url and token_url"
                            .into(),
                    ));
                };
                let display_name = request.display_name.as_ref().unwrap_or(&request.key);
                ProviderSpec::new(&request.key, display_name, authorization_url, token_url)
            }
        };
        let spec = request.apply(base);
        if self.oauth.builtins.contains_key(&spec.key) {
            return Err(ServiceError::Conflict(format!(
                "{} is a built-in provider; choose another key",
                spec.key
            )));
        }
        let def = ProviderDefinition::from_spec(spec, &self.oauth.policy)
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let now = self.clock.now();
        let json = serde_json::to_string(def.spec()).map_err(ServiceError::internal)?;
        let key = def.key().as_str().to_owned();
        let audit = record(
            ctx,
            now,
            Some(&caller.vault_id),
            Actor::ApiKey(caller.key_id.clone()),
            "provider.create",
            Some(key.clone()),
            "success",
        );
        self.apps_store()
            .create_provider(
                ProviderRecord {
                    vault_id: caller.vault_id.clone(),
                    key: key.clone(),
                    spec: json,
                    created_at: now,
                },
                audit,
            )
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::Conflict(_) => {
                    ServiceError::Conflict(format!("a provider {key} already exists in this vault"))
                }
                other => other,
            })?;
        info!(vault.id = %caller.vault_id, provider.key = %key, "provider created");
        Ok(def)
    }
}
