//! Server-wide settings (such as the master key's fingerprint) and the liveness ping.

use async_trait::async_trait;

use crate::error::StoreResult;

#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// A server-wide setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Sets a server-wide setting only if it is not set yet; returns the value now stored.
    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
}
