//! Domain types of tokenwarden. Every value that crosses a trust boundary is parsed into
//! one of these once, at the edge; code further in can rely on it being valid.

mod email;
mod error;
mod id;
mod keys;
mod name;
mod password;
mod role;
mod scope;

pub use email::Email;
pub use error::ParseError;
pub use id::{AccountId, ApiKeyId, AppId, AuditId, ConnectSessionId, VaultId};
pub use keys::{AppKey, ConnectionId, Scopes};
pub use name::Name;
pub use password::Password;
pub use role::{Role, Roles};
pub use scope::{Glob, KeyScope};
