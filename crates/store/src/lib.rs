//! Persistence of tokenwarden, as traits and plain records. No SQL here: each backend
//! crate implements the traits and owns its migrations. Records carry ciphertexts and
//! hashes exactly as the crypto layer produced them; the store never sees a plaintext
//! secret.
//!
//! One module per aggregate holds its records, its store trait, its column lists and
//! one mapper per record (over [`rows::Cursor`], which each backend implements for its
//! driver's row). [`Store`] combines the traits for the code that needs them all.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod connect;
pub mod connections;
pub mod convert;
pub mod copy;
mod error;
pub mod keys;
pub mod rows;
pub mod secret;
pub mod settings;
pub mod vaults;
pub mod webhooks;

pub use accounts::{AccountRecord, AccountStore, LoginAttempt, NewAccount};
pub use apps::{AppRecord, AppStatus, AppStore, AppUpdate, ProviderRecord};
pub use audit::AuditStore;
pub use audit::records::{Actor, AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord};
pub use connect::{
    ConnectLinkRecord, ConnectLinkView, ConnectSessionRecord, ConnectStatus, ConnectStore,
    PendingConnect,
};
pub use connections::{
    ConnectionFilter, ConnectionForToken, ConnectionRecord, ConnectionStatus, ConnectionStore,
    ConnectionUpsert, DueConnection, HealthChange, Schedule, TokenFormat, TokenWrite, UpsertEvents,
};
pub use copy::CopyStore;
pub use error::{StoreError, StoreResult};
pub use keys::{ApiKeyAuthRecord, ApiKeyRecord, KeyStore, KeyWithConnection, NewApiKey};
pub use secret::{Ciphertext, KeySlot, LookupHash, PasswordVerifier};
pub use settings::SettingsStore;
pub use vaults::{NewVault, VaultRecord, VaultStore};
pub use webhooks::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, NewEvent, NewWebhookEndpoint, QueueDepth,
    WebhookEndpointRecord, WebhookEndpointUpdate, WebhookStore,
};

/// Everything tokenwarden persists, for the code that wires it up; a module that needs
/// one aggregate names that aggregate's trait. Implementations must make each method
/// atomic: a method either applies all its writes or none.
pub trait Store:
    SettingsStore
    + AccountStore
    + VaultStore
    + KeyStore
    + AppStore
    + ConnectStore
    + ConnectionStore
    + AuditStore
    + CopyStore
    + WebhookStore
    + 'static
{
}

impl<T> Store for T where
    T: SettingsStore
        + AccountStore
        + VaultStore
        + KeyStore
        + AppStore
        + ConnectStore
        + ConnectionStore
        + AuditStore
        + CopyStore
        + WebhookStore
        + 'static
{
}
