//! Associated data that binds a ciphertext to the one place it belongs.

use tokenwarden_domain::VaultId;

/// What a ciphertext is for. The string forms are part of the stored format: never
/// change one, add a new variant instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The DEK wrapped under an API key's KEK.
    ApiKeySlot,
    /// The DEK wrapped under an account password's KEK.
    PasswordSlot,
    /// The DEK wrapped under the server master key (managed vaults).
    MasterSlot,
    /// The vault's X25519 private key under the DEK.
    SealingPrivateKey,
    /// A connection's token set under the DEK.
    TokenSet,
    /// A connection's token set sealed to the vault's public key by the callback.
    SealedTokenSet,
    /// An OAuth app's client secret under the DEK.
    ClientSecret,
    /// A pending connect's client secret and PKCE verifier under the state-derived key.
    PendingConnect,
    /// A connect link's authorization URL under the link-derived key.
    ConnectLink,
    /// A webhook endpoint's signing secret under the server key (not the DEK: the
    /// server signs deliveries while no key holder is present).
    WebhookSecret,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ApiKeySlot => "api-key-slot",
            Purpose::PasswordSlot => "password-slot",
            Purpose::MasterSlot => "master-slot",
            Purpose::SealingPrivateKey => "sealing-private-key",
            Purpose::TokenSet => "token-set",
            Purpose::SealedTokenSet => "sealed-token-set",
            Purpose::ClientSecret => "client-secret",
            Purpose::PendingConnect => "pending-connect",
            Purpose::ConnectLink => "connect-link",
            Purpose::WebhookSecret => "webhook-secret",
        }
    }
}

/// Where a ciphertext lives: its purpose (≈ column), vault and object (≈ row). A
/// ciphertext copied to another row, column or vault fails to decrypt because its
/// binding no longer matches.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    purpose: Purpose,
    vault: &'a VaultId,
    object: &'a str,
    context: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(purpose: Purpose, vault: &'a VaultId, object: &'a str) -> Self {
        Self {
            purpose,
            vault,
            object,
            context: "",
        }
    }

    /// Also binds the ciphertext to `context`: what else the row must still say for the
    /// ciphertext to be valid (a connection's app, an app's provider), so editing that
    /// column in the database makes the ciphertext unreadable instead of redirecting it.
    pub fn within(self, context: &'a str) -> Self {
        Self { context, ..self }
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The associated data: a domain tag, the envelope header and four length-prefixed
    /// fields, so no two distinct bindings encode alike.
    pub(crate) fn aad(&self, header: &[u8]) -> Vec<u8> {
        let fields = [
            self.purpose.as_str().as_bytes(),
            self.vault.as_str().as_bytes(),
            self.object.as_bytes(),
            self.context.as_bytes(),
        ];
        let mut aad = Vec::with_capacity(
            16 + header.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>(),
        );
        aad.extend_from_slice(b"tokenwarden/aad");
        aad.extend_from_slice(header);
        for field in fields {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field);
        }
        aad
    }
}
