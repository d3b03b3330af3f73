//! The HTTP gateway of tokenwarden: routing, request authentication, problem+json
//! errors, the generated OpenAPI document and metrics. It persists nothing itself and
//! holds no secret beyond the request that presented it.

mod app;
mod error;
mod extract;
mod metrics;
mod openapi;
mod pages;
mod reveal;
mod routes;
mod state;

pub use app::{App, ServerConfig, Signup};
pub use axum::Router;
pub use extract::BODY_LIMIT;
pub use openapi::openapi;
pub use tokenwarden_service::{Clock, ProxySettings, StartError, SystemClock};
