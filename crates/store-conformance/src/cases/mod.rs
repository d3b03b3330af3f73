//! The cases, one file per store aggregate as in the store crate. Each takes a fresh,
//! empty store; the crate's test macro names every one of them.

mod race;

mod accounts;
mod apps;
mod audit;
mod connect;
mod connections;
mod copy;
mod keys;
mod refresh;
mod settings;
mod vaults;
mod webhooks;

pub use accounts::*;
pub use apps::*;
pub use audit::*;
pub use connect::*;
pub use connections::*;
pub use copy::*;
pub use keys::*;
pub use refresh::*;
pub use settings::*;
pub use vaults::*;
pub use webhooks::*;
