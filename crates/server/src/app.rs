//! Building and serving the application from its configuration.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokenwarden_crypto::MasterKey;
use tokenwarden_service::{Clock, ServiceConfig, Services, SystemClock};
use tokenwarden_store::Store;
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};
use tokenwarden_store_postgres::{PgStore, PgUrl};
use tokenwarden_store_sqlite::{SqliteStore, SqliteUrl};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::{info, warn};

use crate::error::ApiError;
use crate::metrics::{self, Metrics};
use crate::openapi::api_router;
use crate::state::AppState;

/// Largest request body accepted (JSON documents here are small).
pub const BODY_LIMIT: usize = 64 * 1024;

const MASTER_KEY_FINGERPRINT: &str = "master_key_fingerprint";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    Open,
    Closed,
}

/// Everything `tokenwarden serve` is configured with (api.md, "Running the server").
#[derive(Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub public_url: String,
    pub refresh_skew_secs: u64,
    pub return_origins: Vec<String>,
    pub master_key: Option<MasterKey>,
    pub signup: Signup,
    pub allow_loopback_providers: bool,
    /// How long a refresh lease lasts (longer than any refresh can take).
    pub refresh_lease_secs: u64,
    /// Providers added to the built-in catalog (the `--dev` demo provider).
    pub extra_providers: Vec<tokenwarden_service::ProviderSpec>,
    /// How long a connect link stays usable, in seconds.
    pub connect_link_ttl_secs: u64,
    /// Extra routes served by the same server (the `--dev` demo provider).
    pub extra_routes: Option<(String, Router)>,
    /// Limits and outbound settings of the API proxy.
    pub proxy: tokenwarden_service::ProxySettings,
}

/// Why the server would not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("TOKENWARDEN_DATABASE_URL: {0}")]
    DatabaseUrl(String),
    #[error("could not open the database: {0}")]
    Database(#[source] tokenwarden_store::StoreError),
    #[error(
        "the configured master key is not the one this database was set up with \
         (fingerprints differ). Start with the original TOKENWARDEN_MASTER_KEY / \
         TOKENWARDEN_MASTER_KEY_FILE; nothing was changed"
    )]
    MasterKeyMismatch,
    #[error("could not set up the OAuth client: {0}")]
    OAuth(#[source] tokenwarden_service::ServiceError),
}

/// Opens the store a database URL names, applying its migrations; the scheme picks the
/// backend. Messages never show the URL's password.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StartupError> {
    match Backend::of(url)? {
        Backend::Sqlite(parsed) => {
            let store = SqliteStore::open(&parsed).map_err(StartupError::Database)?;
            Ok(Arc::new(store))
        }
        Backend::Postgres(parsed) => {
            let store = PgStore::open(&parsed)
                .await
                .map_err(StartupError::Database)?;
            Ok(Arc::new(store))
        }
        Backend::Mysql(parsed) => {
            let store = MysqlStore::open(&parsed)
                .await
                .map_err(StartupError::Database)?;
            Ok(Arc::new(store))
        }
    }
}

/// Applies the migrations of the database `url` names and nothing else
/// (`tokenwarden migrate`); returns a line for each migration applied.
pub async fn migrate_store(url: &str) -> Result<Vec<String>, StartupError> {
    match Backend::of(url)? {
        Backend::Sqlite(parsed) => {
            let applied = SqliteStore::migrate(&parsed).map_err(StartupError::Database)?;
            Ok(applied)
        }
        Backend::Postgres(parsed) => {
            let applied = PgStore::migrate(&parsed)
                .await
                .map_err(StartupError::Database)?;
            Ok(applied
                .into_iter()
                .map(|m| format!("V{}__{}", m.version, m.name))
                .collect())
        }
        Backend::Mysql(parsed) => MysqlStore::migrate(&parsed)
            .await
            .map_err(StartupError::Database),
    }
}

/// A database URL, checked by the backend its scheme names.
enum Backend {
    Sqlite(SqliteUrl),
    Postgres(Box<PgUrl>),
    Mysql(Box<MysqlUrl>),
}

impl Backend {
    fn of(url: &str) -> Result<Self, StartupError> {
        let bad = |e: String| StartupError::DatabaseUrl(e);
        match url.split_once("://").map(|(s, _)| s) {
            Some("sqlite") => {
                let parsed = SqliteUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                parsed.check_location().map_err(|e| bad(e.to_string()))?;
                Ok(Self::Sqlite(parsed))
            }
            Some("postgres" | "postgresql") => {
                let parsed = PgUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                Ok(Self::Postgres(Box::new(parsed)))
            }
            Some("mysql") => {
                let parsed = MysqlUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                Ok(Self::Mysql(Box::new(parsed)))
            }
            Some("mariadb") => Err(bad(
                "use mysql:// for MariaDB too (mysql://user@host:3306/database)".into(),
            )),
            _ => Err(bad(format!(
                "unrecognised database URL {}; use sqlite://path/to/file.db, postgres://user@host/database or mysql://user@host/database",
                tokenwarden_store_postgres::redacted(url)
            ))),
        }
    }
}

/// The built application: its router and shared state.
#[derive(Debug)]
pub struct App {
    router: Router,
    state: AppState,
}

impl App {
    pub async fn build(config: ServerConfig) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`App::build`], with time supplied by `clock` (tests move it instead of
    /// sleeping).
    pub async fn build_with_clock(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let store = open_store(&config.database_url).await?;
        if let Some(master) = &config.master_key {
            let fingerprint = master.fingerprint();
            let stored = store
                .init_setting(MASTER_KEY_FINGERPRINT, &fingerprint)
                .await
                .map_err(StartupError::Database)?;
            if stored != fingerprint {
                return Err(StartupError::MasterKeyMismatch);
            }
        } else if store
            .setting(MASTER_KEY_FINGERPRINT)
            .await
            .map_err(StartupError::Database)?
            .is_some()
        {
            warn!(
                "this database was used with a master key, but none is configured: managed vaults cannot be refreshed in the background"
            );
        }
        let services = Services::new(
            store,
            clock,
            ServiceConfig {
                signup_open: config.signup == Signup::Open,
                public_url: config.public_url.trim_end_matches('/').to_owned(),
                refresh_skew_secs: config.refresh_skew_secs,
                return_origins: config.return_origins,
                allow_loopback_providers: config.allow_loopback_providers,
                refresh_lease_secs: config.refresh_lease_secs,
                extra_providers: config.extra_providers,
                connect_link_ttl_secs: config.connect_link_ttl_secs,
                proxy: config.proxy,
            },
            config.master_key,
        )
        .map_err(StartupError::OAuth)?;
        let state = AppState {
            services,
            metrics: Arc::new(Metrics::new()),
        };
        let mut router = router(state.clone());
        if let Some((path, extra)) = config.extra_routes {
            router = router.nest(&path, extra);
        }
        Ok(Self { router, state })
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn services(&self) -> &Arc<tokenwarden_service::Services> {
        &self.state.services
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "listening");
        }
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}

fn router(state: AppState) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let mut doc = doc;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let doc = Arc::new(doc);
    api.route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .method_not_allowed_fallback(method_not_allowed)
    .route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        metrics::track,
    ))
    .fallback(not_found)
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    // Responses carry keys, tokens, connect links and provider data: no cache may keep
    // them. Nothing here sets a cacheable value (the proxy replaces the provider's own).
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    // A JSON answer opened in a browser (or a redirect) gets the same protection as the
    // HTML pages, which set their own, stricter-worded policy: nothing loads, nothing
    // frames it, and its URL (a callback's code, a connect link) is never sent on as a
    // Referer.
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::pages::API_CSP),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
    .layer(CatchPanicLayer::custom(panic_response))
    .with_state(state)
}
