//! The service layer of tokenwarden: the one place that combines the key hierarchy
//! (crypto), persistence (store) and, later, the OAuth client. Handlers call it with
//! parsed domain values and an authenticated caller; it never sees HTTP.

mod accounts;
mod api_keys;
mod apps;
mod audit;
mod audit_batch;
mod background;
mod callback;
mod callback_query;
mod caller;
mod clock;
mod connect;
mod connections;
mod connections_import;
mod copy;
mod deliveries;
mod error;
mod lifecycle;
mod lifecycle_metrics;
mod links;
mod providers;
mod proxy;
mod proxy_types;
mod refresh;
mod refresh_provider;
mod session_secrets;
mod start;
mod stores;
mod token_set;
mod vaults;
mod webhooks;

use std::sync::Arc;

use tokenwarden_crypto::{MasterKey, PasswordKdf, ServerKey};
use tokenwarden_store::Store;
use tokio::sync::Semaphore;

pub use accounts::{AccountSession, FAILURE_WINDOW_MINUTES};
pub use api_keys::{ApiKeyStatus, ApiKeyView, CreatedApiKey, KeyAndConnection, NewKeyRequest};
pub use apps::{AppChanges, AppView, NewApp};
pub use audit::{AuditVerifyError, ChainReport, MAX_AUDIT_PAGE, RequestContext, verify_audit};
pub use callback::{CallbackOutcome, CallbackParams, CallbackRejected};
pub use caller::Caller;
pub use clock::{Clock, SystemClock};
pub use connect::{ConnectSessionView, CreatedConnectSession, NewConnectSession};
pub use connections::{
    ConnectionListFilter, ConnectionView, ImportConnection, TokenOptions, TokenView,
};
pub use copy::{CopyError, CopyReport, copy_store};
pub use error::{ServiceError, ServiceResult};
pub use lifecycle::LifecycleSettings;
pub use lifecycle_metrics::LifecycleMetrics;
pub use links::{LinkGone, LinkPage, LinkView, SpentLink, binding_cookie_name};
pub use providers::{ProviderRequest, ProviderView};
pub use proxy_types::{
    BASE_URL_HEADER, BodyStream, BodyTooLarge, BoxError, ProxyError, ProxyRequest, ProxyResponse,
    ProxySettings,
};
pub use start::{MASTER_KEY_FINGERPRINT, StartError};
pub use tokenwarden_oauth::{HostResolver, Lookup, ProviderSpec};
pub use tokenwarden_store::{AppStatus, ConnectionStatus};
pub use vaults::{CreatedVault, VaultView};
pub use webhooks::{
    CreatedWebhook, DeliveryView, MAX_DELIVERY_PAGE, NewWebhook, ROTATION_OVERLAP_HOURS,
    WebhookChanges, WebhookView,
};

/// `prefix` + `N` random bytes as lowercase hex: the ids and owners this layer makes
/// (webhook endpoints, delivery attempts, lease and claim owners).
pub(crate) fn random_hex_id<const N: usize>(prefix: &str) -> String {
    let bytes: [u8; N] = tokenwarden_crypto::random_bytes();
    let mut id = String::with_capacity(prefix.len() + 2 * N);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Settings the service layer needs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Whether anyone may create an account (`TOKENWARDEN_SIGNUP`).
    pub signup_open: bool,
    /// Base of redirect URIs and connect links, without a trailing slash.
    pub public_url: String,
    /// Refresh a token that expires within this many seconds.
    pub refresh_skew_secs: u64,
    /// Origins (`scheme://host[:port]`) allowed in `return_to`.
    pub return_origins: Vec<String>,
    /// Allow http:// and non-global provider addresses (development and tests).
    pub allow_loopback_providers: bool,
    /// How long a refresh lease lasts; longer than any refresh can take.
    pub refresh_lease_secs: u64,
    /// Provider definitions added to the built-in catalog (the `--dev` demo provider).
    pub extra_providers: Vec<ProviderSpec>,
    /// How long a connect link stays usable (`TOKENWARDEN_CONNECT_LINK_TTL_SECONDS`).
    pub connect_link_ttl_secs: u64,
    /// Limits and outbound settings of the API proxy.
    pub proxy: ProxySettings,
    /// Background refresh, expiry notices and webhook deliveries.
    pub lifecycle: LifecycleSettings,
    /// Where the server key that encrypts webhook signing secrets lives when no master
    /// key is configured (created on first start). `None` with no master key: webhooks
    /// cannot be registered.
    pub server_key_file: Option<std::path::PathBuf>,
}

/// The services, shared by every request.
pub struct Services {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    master_key: Option<Arc<MasterKey>>,
    /// Encrypts webhook signing secrets; never in the database.
    server_key: Option<Arc<ServerKey>>,
    /// Bounds concurrent Argon2id runs (19 MiB each) so a burst of logins cannot
    /// exhaust memory or starve the blocking pool.
    kdf_permits: Arc<Semaphore>,
    oauth: providers::OAuthRuntime,
    refresh_locks: refresh::RefreshLocks,
    /// Group commit of the audit records of reads.
    audit_batch: audit_batch::AuditBatcher,
    lifecycle_metrics: LifecycleMetrics,
    /// Itself, for work that must outlive the request that started it (a refresh).
    me: std::sync::Weak<Services>,
    /// Parameters for the unknown-account path of login, so it costs what a known
    /// account costs.
    dummy_kdf: PasswordKdf,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .field("managed_mode_available", &self.master_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Only through [`Services::start`], which checks the master key first.
    fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        master_key: Option<MasterKey>,
        server_key: Option<ServerKey>,
    ) -> ServiceResult<Arc<Self>> {
        let kdf_slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        let oauth = providers::OAuthRuntime::new(
            config.allow_loopback_providers,
            config.extra_providers.clone(),
            &config.proxy,
        )?;
        Ok(Arc::new_cyclic(|me| Self {
            store,
            clock,
            oauth,
            refresh_locks: Default::default(),
            audit_batch: Default::default(),
            lifecycle_metrics: LifecycleMetrics::default(),
            me: me.clone(),
            config,
            master_key: master_key.map(Arc::new),
            server_key: server_key.map(Arc::new),
            kdf_permits: Arc::new(Semaphore::new(kdf_slots)),
            dummy_kdf: PasswordKdf::new_random(),
        }))
    }

    /// The lifecycle's metrics, for the server's registry.
    pub fn lifecycle_metrics(&self) -> &LifecycleMetrics {
        &self.lifecycle_metrics
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> ServiceResult<()> {
        self.settings_store()
            .ping()
            .await
            .map_err(ServiceError::from)
    }
}
