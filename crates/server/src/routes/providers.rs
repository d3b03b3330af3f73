//! `/v1/providers`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;

use tokenwarden_oauth::{ParamKind, ProviderDefinition, Rotation};
use tokenwarden_service::{ProviderRequest, ProviderView};
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiKeyAuth};
use crate::state::AppState;

/// A provider definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct Provider {
    key: String,
    display_name: String,
    authorization_url: String,
    token_url: String,
    revocation_url: Option<String>,
    userinfo_url: Option<String>,
    issuer: Option<String>,
    api_base_urls: Vec<String>,
    scope_separator: String,
    default_scopes: Vec<String>,
    /// `basic` or `post`.
    client_auth: String,
    pkce: bool,
    iss_parameter_supported: bool,
    /// Whether it comes with tokenwarden (else the vault defined it).
    builtin: bool,
    /// Connect-session parameters the provider's URLs need, with the kind of value
    /// each takes (`label` or `domain`); give them as `params` when connecting.
    params: BTreeMap<String, String>,
    /// The authorization parameter that carries the scopes.
    scope_param: String,
    /// Whether refresh rotates the refresh token: `never`, `always` or `sometimes`.
    refresh_rotates: String,
    /// A refresh token works once.
    refresh_single_use: bool,
    /// How long a rotated-out refresh token keeps working.
    refresh_grace_period_secs: Option<u64>,
    /// A refresh token unused this many days expires.
    refresh_idle_expiry_days: Option<u32>,
    /// A refresh token expires this many days after issue.
    refresh_lifetime_days: Option<u32>,
    /// Whether the refresh request repeats the scopes.
    refresh_requires_scopes: bool,
    /// Redirect query parameters kept with the connection.
    redirect_extras: Vec<String>,
    /// Token response fields kept as extras (empty: every non-secret field).
    extras: Vec<String>,
    /// The provider documentation the entry was written from.
    docs: Vec<String>,
    /// What that documentation did not confirm.
    unconfirmed: Vec<String>,
}

impl Provider {
    fn from_definition(d: &ProviderDefinition, builtin: bool) -> Self {
        Self {
            key: d.key().as_str().to_owned(),
            display_name: d.display_name().to_owned(),
            authorization_url: d.authorization_url().to_string(),
            token_url: d.token_url().to_string(),
            revocation_url: d.revocation_url().map(ToString::to_string),
            userinfo_url: d.userinfo_url().map(ToString::to_string),
            issuer: d.issuer().map(ToOwned::to_owned),
            api_base_urls: d.api_base_urls().iter().map(ToString::to_string).collect(),
            scope_separator: d.scope_separator().to_owned(),
            default_scopes: d.default_scopes().to_vec(),
            client_auth: match d.client_auth() {
                tokenwarden_oauth::ClientAuth::Basic => "basic".into(),
                tokenwarden_oauth::ClientAuth::Post => "post".into(),
            },
            pkce: d.pkce(),
            iss_parameter_supported: d.iss_parameter_supported(),
            builtin,
            params: d
                .params()
                .iter()
                .map(|(k, v)| (k.clone(), kind_name(*v).to_owned()))
                .collect(),
            scope_param: d.scope_param().to_owned(),
            refresh_rotates: match d.refresh().rotates {
                Rotation::Never => "never",
                Rotation::Always => "always",
                Rotation::Sometimes => "sometimes",
            }
            .to_owned(),
            refresh_single_use: d.refresh().single_use,
            refresh_grace_period_secs: d.refresh().grace_period_secs,
            refresh_idle_expiry_days: d.refresh().idle_expiry_days,
            refresh_lifetime_days: d.refresh().lifetime_days,
            refresh_requires_scopes: d.refresh_requires_scopes(),
            redirect_extras: d.redirect_extras().to_vec(),
            extras: d.token_response().extras.clone(),
            docs: d.docs().iter().map(ToString::to_string).collect(),
            unconfirmed: d.spec().unconfirmed.clone(),
        }
    }
}

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Label => "label",
        ParamKind::Domain => "domain",
    }
}

impl From<ProviderView> for Provider {
    fn from(v: ProviderView) -> Self {
        Self::from_definition(&v.definition, v.builtin)
    }
}

/// Built-in providers and this vault's own.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "providers",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<Provider>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_providers(
    State(state): State<AppState>,
    ApiKeyAuth(caller, _): ApiKeyAuth,
) -> ApiResult<Json<Vec<Provider>>> {
    let list = state.services.list_providers(&caller).await?;
    Ok(Json(list.into_iter().map(Provider::from).collect()))
}

/// Add a custom provider (admin): from an OpenID issuer (discovery; the metadata's
/// `issuer` must equal the one given) or from explicit endpoints.
#[utoipa::path(
    post,
    path = "/v1/providers",
    tag = "providers",
    request_body = ProviderRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, body = Provider),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_provider(
    State(state): State<AppState>,
    ApiKeyAuth(caller, ctx): ApiKeyAuth,
    ApiJson(body): ApiJson<ProviderRequest>,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let def = state.services.create_provider(&caller, body, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        Json(Provider::from_definition(&def, false)),
    ))
}
