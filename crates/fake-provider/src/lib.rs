//! A fake OAuth 2.0 / OpenID Connect provider served over real HTTP.
//!
//! tokenwarden's tests start one per test with [`FakeProvider::start`] and
//! drive every quirk and fault of real providers through its handle;
//! `tokenwarden serve --dev` mounts one under a path of its own server with
//! [`FakeProvider::mounted`] and [`FakeProvider::router`], as a demo provider
//! with a consent page.
//!
//! Routes, relative to the base URL (which is also the issuer):
//! `GET /authorize`, `POST /authorize/decision` (consent page), `POST /token`,
//! `POST /revoke`, `GET|POST /userinfo`, `GET /.well-known/openid-configuration`,
//! `GET /.well-known/oauth-authorization-server`, `GET /jwks`, and any method
//! on `/api/{*path}` (echoes the request when the bearer token is valid).
//!
//! Nothing here is secure: the signing key is published in the source and
//! the request log keeps every secret it sees. Never expose it beyond a demo.

mod behaviour;
mod clock;
mod config;
mod error;
mod handle;
mod keys;
mod persona;
mod records;
mod routes;
mod state;

pub use behaviour::{EchoSecrets, ExpiresIn, Fault, FaultKind, FaultScope, Quirks, RedirectIss};
pub use config::{
    AuthorizeMode, ClientAuthPolicy, ClientRegistration, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    FakeProviderConfig, FakeUser,
};
pub use error::Error;
pub use handle::FakeProvider;
pub use keys::KEY_ID;
pub use persona::{Persona, PersonaRevoke, TokenSource};
pub use records::{AuthorizationRecord, Counters, GrantId, GrantSnapshot, RecordedRequest};
pub use state::{ACCESS_TOKEN_PREFIX, CODE_PREFIX, REFRESH_TOKEN_PREFIX};
