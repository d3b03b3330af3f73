//! Starting the services on a store: the master key is checked against the one the
//! database was first used with before anything else runs.

use std::sync::Arc;

use tokenwarden_crypto::{MasterKey, ServerKey};
use tokenwarden_store::{SettingsStore, Store, StoreError};
use tracing::warn;

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::{ServiceConfig, Services};

/// The setting that remembers which master key a database belongs to.
pub const MASTER_KEY_FINGERPRINT: &str = "master_key_fingerprint";
/// The setting that remembers which server key encrypts its webhook secrets.
pub const SERVER_KEY_FINGERPRINT: &str = "server_key_fingerprint";

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
    #[error("could not load the server key: {0}")]
    ServerKey(String),
    #[error(
        "the server key is not the one this database's webhook secrets were encrypted with \
         (fingerprints differ). Start with the original TOKENWARDEN_MASTER_KEY, or without one \
         and the original TOKENWARDEN_SERVER_KEY_FILE; nothing was changed"
    )]
    ServerKeyMismatch,
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
        let server_key = server_key(master_key.as_ref(), config.server_key_file.as_deref())?;
        if let Some(key) = &server_key {
            let fingerprint = key.fingerprint();
            let stored = store
                .init_setting(SERVER_KEY_FINGERPRINT, fingerprint.as_ref())
                .await
                .map_err(StartError::Database)?;
            if stored.as_slice() != AsRef::<[u8]>::as_ref(&fingerprint) {
                return Err(StartError::ServerKeyMismatch);
            }
        }
        Services::new(store, clock, config, master_key, server_key).map_err(StartError::OAuth)
    }
}

/// The key that encrypts webhook signing secrets: derived from the master key when
/// there is one, else read from (or created in) the configured key file.
fn server_key(
    master: Option<&MasterKey>,
    file: Option<&std::path::Path>,
) -> Result<Option<ServerKey>, StartError> {
    if let Some(master) = master {
        return Ok(Some(ServerKey::from_master(master)));
    }
    match file {
        Some(path) => ServerKey::load_or_create(path)
            .map(Some)
            .map_err(|e| StartError::ServerKey(e.to_string())),
        None => Ok(None),
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
