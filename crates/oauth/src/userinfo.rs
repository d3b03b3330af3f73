//! The OIDC userinfo call (OIDC Core §5.3): who the connected account is.

use serde_json::{Map, Value};
use tracing::instrument;

use crate::http::{FetchError, OutboundClient};
use crate::provider::ProviderDefinition;
use crate::secret::AccessToken;

/// Fetches the provider's `userinfo_url` with the access token; `Ok(None)` when the
/// provider has none. Only JSON answers are read (a signed userinfo JWT is refused as
/// malformed).
#[instrument(skip_all, fields(provider.key = %def.key()))]
pub async fn fetch_userinfo(
    http: &OutboundClient,
    def: &ProviderDefinition,
    access_token: &AccessToken,
) -> Result<Option<Map<String, Value>>, FetchError> {
    match def.userinfo_url() {
        Some(url) => http.get_json(url, Some(access_token)).await.map(Some),
        None => Ok(None),
    }
}
