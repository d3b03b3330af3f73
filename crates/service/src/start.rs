//! Starting the services on a store: the master key is checked against the one the
//! database was first used with before anything else runs.

use std::sync::Arc;

use tokenwarden_crypto::MasterKey;
use tokenwarden_store::{SettingsStore, Store, StoreError};
use tracing::warn;

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::{ServiceConfig, Services};

/// The setting that remembers which master key a database belongs to.
pub const MASTER_KEY_FINGERPRINT: &str = "master_key_fingerprint";

/// Why the services would not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the database: {0}")]
    Database(#[source] StoreError),
    #[error(
        "the configured master key is not the one this database was set up with \
         (fingerprints differ). Start with the original TOKENWARDEN_MASTER_KEY / \
         TOKENWARDEN_MASTER_KEY_FILE; nothing was changed"
    )]
    MasterKeyMismatch,
    #[error("could not set up the OAuth client: {0}")]
    OAuth(#[source] ServiceError),
}

impl Services {
    /// Checks `master_key` against the database (the first start records its
    /// fingerprint; a later start with another key is refused before any request), then
    /// builds the services.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        master_key: Option<MasterKey>,
    ) -> Result<Arc<Self>, StartError> {
        check_master_key(store.as_ref(), master_key.as_ref()).await?;
        Services::new(store, clock, config, master_key).map_err(StartError::OAuth)
    }
}

async fn check_master_key(
    store: &dyn SettingsStore,
    master_key: Option<&MasterKey>,
) -> Result<(), StartError> {
    if let Some(master) = master_key {
        let fingerprint = master.fingerprint();
        let stored = store
            .init_setting(MASTER_KEY_FINGERPRINT, &fingerprint)
            .await
            .map_err(StartError::Database)?;
        if stored != fingerprint {
            return Err(StartError::MasterKeyMismatch);
        }
    } else if store
        .setting(MASTER_KEY_FINGERPRINT)
        .await
        .map_err(StartError::Database)?
        .is_some()
    {
        warn!(
            "this database was used with a master key, but none is configured: managed vaults cannot be refreshed in the background"
        );
    }
    Ok(())
}
