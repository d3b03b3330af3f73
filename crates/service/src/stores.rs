//! The store as each aggregate's trait: a service module reaches the store through the
//! trait of the aggregate it works on (`self.connections_store()`), not through the
//! whole `Store`, which only the wiring holds.

use tokenwarden_store::{
    AccountStore, AppStore, AuditStore, ConnectStore, ConnectionStore, KeyStore, SettingsStore,
    VaultStore,
};

use crate::Services;

impl Services {
    pub(crate) fn settings_store(&self) -> &dyn SettingsStore {
        &*self.store
    }

    pub(crate) fn accounts_store(&self) -> &dyn AccountStore {
        &*self.store
    }

    pub(crate) fn vaults_store(&self) -> &dyn VaultStore {
        &*self.store
    }

    pub(crate) fn keys_store(&self) -> &dyn KeyStore {
        &*self.store
    }

    pub(crate) fn apps_store(&self) -> &dyn AppStore {
        &*self.store
    }

    pub(crate) fn connect_store(&self) -> &dyn ConnectStore {
        &*self.store
    }

    pub(crate) fn connections_store(&self) -> &dyn ConnectionStore {
        &*self.store
    }

    pub(crate) fn audit_store(&self) -> &dyn AuditStore {
        &*self.store
    }
}
