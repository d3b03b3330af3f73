//! [`FakeProvider`]: starting, mounting, steering and inspecting the provider.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

use crate::behaviour::{Fault, Quirks};
use crate::config::{AuthorizeMode, ClientAuthPolicy, ClientRegistration, FakeProviderConfig};
use crate::error::Error;
use crate::keys::SigningKey;
use crate::records::{AuthorizationRecord, Counters, GrantId, GrantSnapshot, RecordedRequest};
use crate::routes;
use crate::state::{Shared, lock};

mod time;

/// A running (or mountable) fake provider.
///
/// Dropping the handle stops a server started with [`FakeProvider::start`]
/// (the listener closes, open connections drain, hung requests are
/// released); [`FakeProvider::shutdown`] does the same and waits for it.
/// All methods take `&self` and are safe to call while requests run.
pub struct FakeProvider {
    shared: Arc<Shared>,
    server: Option<Server>,
}

/// Only where it is: the state holds every token issued.
impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("base_url", &self.shared.base_url)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeProvider {
    /// Binds `127.0.0.1:0` and serves in a tokio task. The base URL (and
    /// issuer) is `http://127.0.0.1:{port}`.
    pub async fn start(config: FakeProviderConfig) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let mut provider = Self::mounted(config, &format!("http://{addr}"))?;
        let app = provider.router();
        let mut down = provider.shared.shutdown.subscribe();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                // An error means the sender is gone: shut down too.
                let _ = down.wait_for(|down| *down).await;
            });
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, "fake provider server stopped");
            }
        });
        provider.server = Some(Server { addr, task });
        tracing::debug!(base_url = %provider.base_url(), "fake provider started");
        Ok(provider)
    }

    /// Builds a provider without a server, to be served by another axum app
    /// through [`FakeProvider::router`] nested at the path of `base_url`
    /// (e.g. `http://localhost:8080/demo-provider` nested at
    /// `/demo-provider`). Every URL the provider emits starts with
    /// `base_url`.
    pub fn mounted(config: FakeProviderConfig, base_url: &str) -> Result<Self, Error> {
        let base_url = normalise_base_url(base_url)?;
        let key = SigningKey::load().map_err(Error::SigningKey)?;
        Ok(Self {
            shared: Arc::new(Shared::new(config, base_url, key)),
            server: None,
        })
    }

    /// The provider's routes, relative to its base URL, sharing this handle's
    /// state. Nest it in another app with `Router::nest(path, router)`.
    pub fn router(&self) -> axum::Router {
        routes::router(self.shared.clone())
    }

    /// Stops the server and waits (at most 5 s) for open connections to end.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            let abort = server.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    // --- Addresses -------------------------------------------------------

    /// The socket address of a started server.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The issuer: the base URL.
    pub fn issuer(&self) -> &str {
        self.shared.issuer()
    }

    pub fn authorization_endpoint(&self) -> String {
        self.shared.endpoint("/authorize")
    }

    pub fn token_endpoint(&self) -> String {
        self.shared.endpoint("/token")
    }

    pub fn revocation_endpoint(&self) -> String {
        self.shared.endpoint("/revoke")
    }

    pub fn userinfo_endpoint(&self) -> String {
        self.shared.endpoint("/userinfo")
    }

    pub fn jwks_uri(&self) -> String {
        self.shared.endpoint("/jwks")
    }

    pub fn discovery_url(&self) -> String {
        self.shared.endpoint("/.well-known/openid-configuration")
    }

    /// Base URL of the echoing API (`{base}/api`), for proxy tests.
    pub fn api_base_url(&self) -> String {
        self.shared.endpoint("/api")
    }

    // --- Clients ---------------------------------------------------------

    /// Every registered client.
    pub fn clients(&self) -> &[ClientRegistration] {
        &self.shared.clients
    }

    /// The first registered client's id (empty when none is registered).
    pub fn client_id(&self) -> &str {
        self.shared
            .clients
            .first()
            .map_or("", |c| c.client_id.as_str())
    }

    /// The first registered client's secret.
    pub fn client_secret(&self) -> Option<&str> {
        self.shared
            .clients
            .first()
            .and_then(|c| c.client_secret.as_deref())
    }

    // --- Behaviour switches ----------------------------------------------

    pub fn quirks(&self) -> Quirks {
        lock(&self.shared.settings).quirks.clone()
    }

    pub fn set_quirks(&self, quirks: Quirks) {
        lock(&self.shared.settings).quirks = quirks;
    }

    /// Changes some quirks in place: `p.update_quirks(|q| q.errors_with_200 = true)`.
    pub fn update_quirks(&self, change: impl FnOnce(&mut Quirks)) {
        change(&mut lock(&self.shared.settings).quirks);
    }

    /// Adds a fault; faults are consumed in the order they were added.
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.shared.settings).faults.push(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.settings).faults.clear();
    }

    /// Faults not yet used up.
    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.shared.settings).faults.clone()
    }

    /// Delay before every token endpoint answer (zero by default).
    pub fn set_token_latency(&self, latency: Duration) {
        lock(&self.shared.settings).token_latency = latency;
    }

    pub fn set_authorize_mode(&self, mode: AuthorizeMode) {
        lock(&self.shared.settings).authorize_mode = mode;
    }

    pub fn set_client_auth(&self, policy: ClientAuthPolicy) {
        lock(&self.shared.settings).client_auth = policy;
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        lock(&self.shared.settings).access_token_ttl = ttl;
    }

    /// Plays a real provider's paths and message shapes (see [`crate::Persona`]);
    /// `None` returns to the plain routes.
    pub fn set_persona(&self, persona: Option<crate::Persona>) {
        lock(&self.shared.settings).persona = persona;
    }

    /// Turns refresh token rotation (and with it reuse detection) on or off.
    pub fn set_refresh_rotation(&self, rotate: bool) {
        lock(&self.shared.settings).rotate_refresh_tokens = rotate;
    }

    /// Makes the next `n` calls to the API (`/api/...`) answer 401 `invalid_token`
    /// whatever token they carry, as a provider does when it revoked a token early.
    pub fn refuse_api_tokens(&self, n: u32) {
        lock(&self.shared.settings).api_unauthorized = n;
    }

    // --- Counters and logs -----------------------------------------------

    /// A snapshot of every counter.
    pub fn counters(&self) -> Counters {
        lock(&self.shared.counters).clone()
    }

    /// Zeroes every counter.
    pub fn reset_counters(&self) {
        *lock(&self.shared.counters) = Counters::default();
    }

    pub fn authorize_calls(&self) -> u64 {
        self.counters().authorize_calls
    }

    pub fn token_calls(&self) -> u64 {
        self.counters().token_calls
    }

    pub fn code_exchanges(&self) -> u64 {
        self.counters().code_exchanges
    }

    pub fn refresh_calls(&self) -> u64 {
        self.counters().refresh_calls
    }

    pub fn successful_refreshes(&self) -> u64 {
        self.counters().successful_refreshes
    }

    pub fn revocations(&self) -> u64 {
        self.counters().revocations
    }

    pub fn userinfo_calls(&self) -> u64 {
        self.counters().userinfo_calls
    }

    pub fn api_calls(&self) -> u64 {
        self.counters().api_calls
    }

    pub fn reuse_detections(&self) -> u64 {
        self.counters().reuse_detections
    }

    /// Refreshes refused `invalid_grant` because the refresh token had died of
    /// idleness or age (see [`FakeProvider::set_refresh_token_lifetimes`]).
    pub fn dead_refresh_token_refusals(&self) -> u64 {
        self.counters().dead_refresh_token_refusals
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Requests to one path (relative to the base URL, e.g. `/token`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Accepted authorization requests, oldest first.
    pub fn authorizations(&self) -> Vec<AuthorizationRecord> {
        lock(&self.shared.store).authorizations.clone()
    }

    pub fn last_authorization(&self) -> Option<AuthorizationRecord> {
        lock(&self.shared.store).authorizations.last().cloned()
    }

    // --- Grants and tokens -----------------------------------------------

    /// Every grant, oldest first.
    pub fn grants(&self) -> Vec<GrantSnapshot> {
        let store = lock(&self.shared.store);
        store
            .grants
            .keys()
            .filter_map(|id| store.snapshot(*id))
            .collect()
    }

    pub fn grant(&self, id: GrantId) -> Option<GrantSnapshot> {
        lock(&self.shared.store).snapshot(id)
    }

    /// The most recently created grant.
    pub fn latest_grant(&self) -> Option<GrantSnapshot> {
        let store = lock(&self.shared.store);
        let id = *store.grants.keys().next_back()?;
        store.snapshot(id)
    }

    /// The grant an access or refresh token belongs to.
    pub fn grant_of_token(&self, token: &str) -> Option<GrantSnapshot> {
        let store = lock(&self.shared.store);
        let id = store
            .access
            .get(token)
            .map(|a| a.grant)
            .or_else(|| store.refresh.get(token).map(|r| r.grant))?;
        store.snapshot(id)
    }

    /// Every secret value ever issued: codes, access and refresh tokens,
    /// `id_token`s. Tests grep logs and responses for these to prove that
    /// nothing leaked.
    pub fn issued_secrets(&self) -> Vec<String> {
        let store = lock(&self.shared.store);
        let mut out: Vec<String> = store.codes.keys().cloned().collect();
        out.extend(store.access.keys().cloned());
        out.extend(store.refresh.keys().cloned());
        for grant in store.grants.values() {
            out.extend(grant.id_tokens.iter().cloned());
        }
        out
    }

    /// Whether an access token would be accepted by `/userinfo` and `/api`.
    pub fn is_access_token_valid(&self, token: &str) -> bool {
        lock(&self.shared.store)
            .validate_access(token, self.shared.now())
            .is_some()
    }

    /// Makes one access token expired. Returns whether it exists.
    pub fn expire_access_token(&self, token: &str) -> bool {
        let mut store = lock(&self.shared.store);
        match store.access.get_mut(token) {
            Some(record) => {
                record.expires_at = self.shared.now() - chrono::Duration::seconds(1);
                true
            }
            None => false,
        }
    }

    /// Makes every access token of a grant expired (the refresh token stays
    /// valid). Returns whether the grant exists.
    pub fn expire_access_tokens(&self, grant: GrantId) -> bool {
        let mut store = lock(&self.shared.store);
        let Some(tokens) = store.grants.get(&grant).map(|g| g.access_tokens.clone()) else {
            return false;
        };
        let past = self.shared.now() - chrono::Duration::seconds(1);
        for token in tokens {
            if let Some(record) = store.access.get_mut(&token) {
                record.expires_at = past;
            }
        }
        true
    }

    /// Revokes a whole grant, as when the user removes the app's access at
    /// the provider. Returns whether the grant exists.
    pub fn revoke_grant(&self, grant: GrantId) -> bool {
        let mut store = lock(&self.shared.store);
        let exists = store.grants.contains_key(&grant);
        store.revoke_grant(grant);
        exists
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        // Graceful shutdown of a started server, and release of hung requests.
        self.shared.shutdown.send_replace(true);
    }
}

/// `http(s)://host[:port][/path]`, no query or fragment, no trailing slash.
fn normalise_base_url(base_url: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::BaseUrl {
        url: base_url.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::normalise_base_url;

    #[test]
    fn base_url_loses_its_trailing_slash_and_keeps_its_path() {
        assert_eq!(
            normalise_base_url("http://localhost:8080/demo-provider/").unwrap(),
            "http://localhost:8080/demo-provider"
        );
        assert_eq!(
            normalise_base_url("http://127.0.0.1:9").unwrap(),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn base_url_with_a_query_is_refused() {
        assert!(normalise_base_url("http://localhost/x?y=1").is_err());
        assert!(normalise_base_url("ftp://localhost/").is_err());
    }
}
