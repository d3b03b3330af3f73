//! What every handler shares.

use std::sync::Arc;

use tokenwarden_service::Services;

use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub metrics: Arc<Metrics>,
}
