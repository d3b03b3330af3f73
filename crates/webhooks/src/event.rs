//! What is delivered: the event types (docs/api.md, "Webhooks"), the event, its id and
//! the exact JSON body that is signed and sent.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

macro_rules! event_types {
    ($($(#[$meta:meta])* $variant:ident => $text:literal,)*) => {
        /// The kind of an event. The string forms are part of the public API and the
        /// stored outbox: never change one, add a new variant instead.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[$meta])* $variant,)*
        }

        impl EventType {
            /// Every type, in the order docs/api.md lists them (then the additions).
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Result<Self, UnknownEventType> {
                match text {
                    $($text => Ok(EventType::$variant),)*
                    _ => Err(UnknownEventType),
                }
            }
        }
    };
}

event_types! {
    /// A connect session completed: a new connection is active.
    ConnectionCreated => "connection.created",
    /// An existing connection was connected again (new consent, new tokens).
    ConnectionReconnected => "connection.reconnected",
    /// A refresh failed transiently: the connection is `failing`.
    ConnectionRefreshFailed => "connection.refresh_failed",
    /// The provider refused the refresh token: someone must connect again.
    ConnectionNeedsReauth => "connection.needs_reauth",
    /// The connection's refresh token (or the connection itself) expires soon.
    ConnectionExpiring => "connection.expiring",
    ConnectionDeleted => "connection.deleted",
    /// A connect session ended without a connection (denied, provider error, expiry).
    ConnectSessionFailed => "connect_session.failed",
    ApiKeyCreated => "api_key.created",
    ApiKeyRevoked => "api_key.revoked",
    /// Sent on request by `POST /v1/webhooks/{id}/test`.
    WebhookTest => "webhook.test",
    /// A `failing` connection refreshed again: it is `active`.
    ConnectionRecovered => "connection.recovered",
    /// The access token is past expiry and nothing can refresh it: `expired`.
    ConnectionExpired => "connection.expired",
}

/// A string that names no event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown webhook event type")]
pub struct UnknownEventType;

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, UnknownEventType> {
        Self::parse(s)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(|_| {
            serde::de::Error::custom(format_args!("unknown webhook event type `{text}`"))
        })
    }
}

/// One event, delivered to every endpoint that subscribed to its type.
///
/// `data` carries ids, the app, the provider, a status and a reason: **never** a token,
/// an authorization code, a key or a secret, since receivers log webhook bodies freely
/// and the body is stored in the outbox in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `msg_` + 26 characters: the `webhook-id` of every attempt, so receivers can drop
    /// a duplicate delivery.
    pub id: String,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    /// A new event that happened `at`, with a fresh id.
    pub fn new(event_type: EventType, at: DateTime<Utc>, data: Value) -> Self {
        Self {
            id: new_event_id(at, &mut rand::thread_rng()),
            event_type,
            timestamp: at,
            data,
        }
    }

    /// The delivery body, `{"type":..,"timestamp":..,"data":..}` with the timestamp in
    /// RFC 3339 UTC. Built once and stored: the bytes signed must be the bytes sent, so
    /// nobody re-serialises it later.
    pub fn body(&self) -> String {
        // Value's Display writes compact, correctly escaped JSON and cannot fail.
        format!(
            r#"{{"type":{},"timestamp":{},"data":{}}}"#,
            Value::from(self.event_type.as_str()),
            Value::from(self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)),
            self.data
        )
    }
}

/// Crockford's base32, as ULIDs use it (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `msg_` + a ULID: 48 bits of milliseconds since the epoch, then 80 random bits, as 26
/// base32 characters. Ids of one endpoint's events therefore sort by time, and contain
/// no `.`, which the signed `{id}.{timestamp}.{body}` relies on.
pub fn new_event_id(at: DateTime<Utc>, rng: &mut impl Rng) -> String {
    let millis = u128::try_from(at.timestamp_millis())
        .unwrap_or(0)
        .min((1 << 48) - 1);
    let random = rng.r#gen::<u128>() & ((1 << 80) - 1);
    let value = (millis << 80) | random;
    let mut id = String::with_capacity(30);
    id.push_str("msg_");
    // 26 characters of 5 bits cover 130 bits; the first character's top bits are zero.
    for i in (0..26).rev() {
        let index = (value >> (i * 5)) & 0x1f;
        id.push(char::from(CROCKFORD[index as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 14, 30, 5).unwrap()
    }

    #[test]
    fn every_type_reads_back_from_its_string() {
        assert_eq!(EventType::ALL.len(), 12);
        for &t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
        let unique: std::collections::HashSet<_> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(unique.len(), EventType::ALL.len());
    }

    #[test]
    fn the_documented_type_names_are_exact() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "connection.created",
                "connection.reconnected",
                "connection.refresh_failed",
                "connection.needs_reauth",
                "connection.expiring",
                "connection.deleted",
                "connect_session.failed",
                "api_key.created",
                "api_key.revoked",
                "webhook.test",
                "connection.recovered",
                "connection.expired",
            ]
        );
    }

    #[test]
    fn unknown_type_names_are_refused() {
        for bad in [
            "",
            "connection",
            "Connection.Created",
            "connection.created ",
        ] {
            assert_eq!(EventType::parse(bad), Err(UnknownEventType), "{bad}");
        }
        assert!(serde_json::from_str::<EventType>(r#""nope""#).is_err());
    }

    #[test]
    fn the_body_is_type_timestamp_data_in_that_order() {
        let event = Event::new(
            EventType::ConnectionCreated,
            at(),
            json!({"connection_id": "con_1", "note": "quote \" here"}),
        );
        assert_eq!(
            event.body(),
            r#"{"type":"connection.created","timestamp":"2026-12-03T14:30:05.000Z","data":{"connection_id":"con_1","note":"quote \" here"}}"#
        );
        let parsed: Value = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(parsed["data"]["note"], "quote \" here");
    }

    #[test]
    fn event_ids_are_msg_and_26_crockford_characters_sorted_by_time() {
        let mut rng = StdRng::seed_from_u64(7);
        let earlier = new_event_id(at(), &mut rng);
        let later = new_event_id(at() + chrono::Duration::milliseconds(1), &mut rng);
        for id in [&earlier, &later] {
            let suffix = id.strip_prefix("msg_").unwrap();
            assert_eq!(suffix.len(), 26);
            assert!(suffix.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");
        }
        assert!(earlier < later);
        // The time prefix is the same for one millisecond; the random part differs.
        let a = new_event_id(at(), &mut rng);
        let b = new_event_id(at(), &mut rng);
        assert_eq!(a[..14], b[..14]);
        assert_ne!(a, b);
    }

    #[test]
    fn new_events_get_distinct_ids() {
        let a = Event::new(EventType::WebhookTest, at(), json!({}));
        let b = Event::new(EventType::WebhookTest, at(), json!({}));
        assert_ne!(a.id, b.id);
        assert_eq!(a.timestamp, at());
    }
}
