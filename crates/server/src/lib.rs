//! The HTTP gateway of tokenwarden: routing, request authentication, problem+json
//! errors, the generated OpenAPI document and metrics. It persists nothing itself and
//! holds no secret beyond the request that presented it.

pub mod app;
mod error;
mod extract;
mod metrics;
mod openapi;
mod pages;
mod reveal;
mod routes;
mod state;

pub use app::{App, BODY_LIMIT, ServerConfig, Signup, StartupError, migrate_store, open_store};
pub use axum::Router;
pub use openapi::openapi;
pub use tokenwarden_service::{Clock, ProxySettings, SystemClock};
