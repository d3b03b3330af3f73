//! An authenticated API key, as the request handlers see it.

use std::fmt;

use tokenwarden_crypto::{Binding, DataKey, Kek, Purpose};
use tokenwarden_domain::{ApiKeyId, KeyScope, Role, Roles, VaultId};

use crate::{ServiceError, ServiceResult};

/// Who is calling: a key that passed authentication. Holds what unwraps the vault DEK
/// (the key's KEK and its slot) but unwraps it only when an operation needs it, and
/// never keeps the DEK beyond that operation.
pub struct Caller {
    pub(crate) vault_id: VaultId,
    pub(crate) key_id: ApiKeyId,
    pub(crate) roles: Roles,
    pub(crate) scope: KeyScope,
    pub(crate) slot: Vec<u8>,
    pub(crate) kek: Kek,
}

impl Caller {
    pub fn vault_id(&self) -> &VaultId {
        &self.vault_id
    }

    pub fn key_id(&self) -> &ApiKeyId {
        &self.key_id
    }

    pub fn roles(&self) -> Roles {
        self.roles
    }

    pub fn scope(&self) -> &KeyScope {
        &self.scope
    }

    /// Fails with 403 unless the key has `role` (admin has every role).
    pub fn require(&self, role: Role) -> ServiceResult<()> {
        if self.roles.allows(role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this API key lacks the {role} role"
            )))
        }
    }

    /// Fails with 403 unless the key has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> ServiceResult<()> {
        if roles.iter().any(|r| self.roles.allows(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ServiceError::Forbidden(format!(
            "this API key lacks the {} role",
            names.join(" or ")
        )))
    }

    /// Fails with 403 unless the key's scope allows the app.
    pub fn require_app(&self, app: &str) -> ServiceResult<()> {
        if self.scope.allows_app(app) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "this API key's scope does not include that app".into(),
            ))
        }
    }

    /// For something already looked up: answers 404 (not 403) when its app is outside
    /// the key's scope, so a scoped key cannot probe which ids exist elsewhere.
    pub fn see_app(&self, app: &str, what: &'static str) -> ServiceResult<()> {
        if self.scope.allows_app(app) {
            Ok(())
        } else {
            Err(ServiceError::NotFound(what))
        }
    }

    /// Fails with 403 unless the key's scope allows the connection.
    pub fn require_connection(&self, connection: &str) -> ServiceResult<()> {
        if self.scope.allows_connection(connection) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "this API key's scope does not include that connection".into(),
            ))
        }
    }

    /// Unwraps the vault's data key from this key's slot.
    pub(crate) fn data_key(&self) -> ServiceResult<DataKey> {
        let binding = Binding::new(Purpose::ApiKeySlot, &self.vault_id, self.key_id.as_str());
        self.kek
            .unwrap(&binding, &self.slot)
            .map_err(ServiceError::from)
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("vault_id", &self.vault_id)
            .field("key_id", &self.key_id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}
