//! The `webhook-signature` header: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`
//! once per secret, space-separated (Standard Webhooks, "Signature scheme"), so that while
//! a secret is rotated the receiver accepts a delivery under either one.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

/// The identifier of symmetric (HMAC-SHA256) signatures.
const VERSION: &str = "v1";

/// How far a `webhook-timestamp` may be from the receiver's clock, either way: the
/// reference libraries' five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery did not verify. Says which check failed, never what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook timestamp is too old")]
    TooOld,
    #[error("the webhook timestamp is too far in the future")]
    TooNew,
    #[error("no webhook signature matches")]
    NoMatch,
}

fn mac(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes a key of any length, so this never fails; an Option keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(secret.bytes()).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `webhook-signature` header value for one delivery attempt: one `v1,` entry per
/// secret, in the order given (the current secret first, then the one being rotated out).
/// `msg_id` is the event's id; `timestamp` the attempt's Unix seconds.
pub fn sign(msg_id: &str, timestamp: i64, body: &[u8], secrets: &[&WebhookSecret]) -> String {
    secrets
        .iter()
        .filter_map(|secret| mac(secret, msg_id, timestamp, body))
        .map(|mac| format!("{VERSION},{}", STANDARD.encode(mac.finalize().into_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a delivery as a receiver would, with [`DEFAULT_TOLERANCE`]: the timestamp is
/// within five minutes of `now` (Unix seconds) and some `v1` entry of `signature_header`
/// is the HMAC under `secret`. The comparison is constant-time.
pub fn verify(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    secret: &WebhookSecret,
    now: i64,
) -> Result<(), VerifyError> {
    verify_with_tolerance(
        msg_id,
        timestamp,
        body,
        signature_header,
        secret,
        now,
        DEFAULT_TOLERANCE,
    )
}

/// [`verify`] with another timestamp tolerance.
pub fn verify_with_tolerance(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    secret: &WebhookSecret,
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    // i128 so that no timestamp an attacker sends can overflow the subtraction.
    let age = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance.as_secs());
    if age > tolerance {
        return Err(VerifyError::TooOld);
    }
    if -age > tolerance {
        return Err(VerifyError::TooNew);
    }
    let expected = mac(secret, msg_id, timestamp, body).ok_or(VerifyError::NoMatch)?;
    let matched = signature_header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|candidate| expected.clone().verify_slice(&candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn a_signature_verifies_under_its_secret_at_the_signing_time() {
        let header = sign(ID, TS, BODY, &[&secret()]);
        assert_eq!(verify(ID, TS, BODY, &header, &secret(), TS), Ok(()));
    }

    #[test]
    fn a_changed_id_timestamp_body_or_secret_does_not_verify() {
        let header = sign(ID, TS, BODY, &[&secret()]);
        let other = WebhookSecret::generate();
        assert_eq!(
            verify("msg_other", TS, BODY, &header, &secret(), TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(ID, TS + 1, BODY, &header, &secret(), TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(ID, TS, br#"{"test": 2432232315}"#, &header, &secret(), TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(ID, TS, BODY, &header, &other, TS),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_either_way() {
        let header = sign(ID, TS, BODY, &[&secret()]);
        assert_eq!(verify(ID, TS, BODY, &header, &secret(), TS + 300), Ok(()));
        assert_eq!(verify(ID, TS, BODY, &header, &secret(), TS - 300), Ok(()));
        assert_eq!(
            verify(ID, TS, BODY, &header, &secret(), TS + 301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(ID, TS, BODY, &header, &secret(), TS - 301),
            Err(VerifyError::TooNew)
        );
        assert_eq!(
            verify(ID, i64::MIN, BODY, &header, &secret(), i64::MAX),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify_with_tolerance(
                ID,
                TS,
                BODY,
                &header,
                &secret(),
                TS + 3600,
                Duration::from_secs(3600)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_two_secret_header_has_two_entries_and_verifies_under_each() {
        let current = WebhookSecret::generate();
        let previous = secret();
        let header = sign(ID, TS, BODY, &[&current, &previous]);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(
            entries
                .iter()
                .all(|e| e.starts_with("v1,") && e.len() == 47)
        );
        assert_eq!(verify(ID, TS, BODY, &header, &current, TS), Ok(()));
        assert_eq!(verify(ID, TS, BODY, &header, &previous, TS), Ok(()));
        assert_eq!(
            verify(ID, TS, BODY, &header, &WebhookSecret::generate(), TS),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn truncated_foreign_or_malformed_entries_do_not_verify() {
        let header = sign(ID, TS, BODY, &[&secret()]);
        let (_, encoded) = header.split_once(',').unwrap();
        for bad in [
            "",
            "v1,",
            &header[..8],
            &format!("v1a,{encoded}"),
            &format!("v2,{encoded}"),
            "v1,not-base64!!",
            &format!("v1,{}", &encoded[..20]),
        ] {
            assert_eq!(
                verify(ID, TS, BODY, bad, &secret(), TS),
                Err(VerifyError::NoMatch),
                "{bad}"
            );
        }
    }
}
