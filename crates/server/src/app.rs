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
use tokenwarden_service::{Clock, ServiceConfig, Services, StartError, SystemClock};
use tokenwarden_store::Store;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;

use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::metrics::{self, Metrics};
use crate::openapi::api_router;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    Open,
    Closed,
}

/// Everything `tokenwarden serve` is configured with, but the database, which the
/// binary opens (docs/api.md, "Running the server").
#[derive(Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
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
    /// Background refresh, expiry notices and webhook deliveries.
    pub lifecycle: tokenwarden_service::LifecycleSettings,
    /// The key file that encrypts webhook secrets when there is no master key.
    pub server_key_file: Option<std::path::PathBuf>,
}

/// The built application: its router and shared state.
#[derive(Debug)]
pub struct App {
    router: Router,
    state: AppState,
}

impl App {
    /// Builds the application on `store` (which the binary opened: this crate knows no
    /// backend).
    pub async fn build(config: ServerConfig, store: Arc<dyn Store>) -> Result<Self, StartError> {
        Self::build_with_clock(config, store, Arc::new(SystemClock)).await
    }

    /// As [`App::build`], with time supplied by `clock` (tests move it instead of
    /// sleeping).
    pub async fn build_with_clock(
        config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let services = Services::start(
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
                lifecycle: config.lifecycle,
                server_key_file: config.server_key_file,
            },
            config.master_key,
        )
        .await?;
        let state = AppState {
            services: services.clone(),
            metrics: Arc::new(Metrics::new(services.lifecycle_metrics())),
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
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = self.start_workers(stopped);
        let served = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        served
    }

    /// The background workers (connection lifecycle, webhook deliveries), unless the
    /// configuration turned them off.
    fn start_workers(
        &self,
        stopped: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let services = &self.state.services;
        if !services.background_enabled() {
            return Vec::new();
        }
        vec![
            tokio::spawn(services.clone().run_connection_worker(stopped.clone())),
            tokio::spawn(services.clone().run_delivery_worker(stopped)),
        ]
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
        state.metrics.clone(),
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
