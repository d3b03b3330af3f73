//! Standard Webhooks for tokenwarden (docs/api.md, "Webhooks (Standard Webhooks)";
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).
//!
//! Pure pieces that the webhook service and its delivery worker put together:
//! - [`WebhookSecret`]: an endpoint's signing secret, `whsec_` + base64;
//! - [`sign`] / [`verify`]: the `webhook-signature` header (`v1,<base64 HMAC-SHA256>`);
//! - [`EventType`] and [`Event`]: what is delivered, and the exact body that is signed;
//! - [`schedule::next_delay`]: when a failed delivery is tried again, and when never;
//! - [`Sender`]: one delivery attempt through the outbound policy of
//!   `tokenwarden_oauth::http` (no private addresses, no redirects, bounded time and
//!   size), and [`validate_url`] for an endpoint URL at registration.
//!
//! Nothing here stores anything or knows a vault.

mod endpoint_url;
mod event;
pub mod schedule;
mod secret;
mod sender;
mod signature;

pub use endpoint_url::{UrlError, validate_url};
pub use event::{Event, EventType, UnknownEventType, new_event_id};
pub use schedule::{MAX_ATTEMPTS, next_delay};
pub use secret::{SecretError, WebhookSecret};
pub use sender::{OutcomeKind, SendOutcome, Sender, SenderError};
pub use signature::{DEFAULT_TOLERANCE, VerifyError, sign, verify, verify_with_tolerance};
