//! One delivery attempt: a signed `POST` through the outbound policy of the API proxy
//! (`tokenwarden_oauth::http`): no redirects followed, no loopback, private or other
//! non-global address (checked on the resolved address), https only, bounded connect
//! and total time, and at most a few KiB of the answer read, then dropped.
//!
//! The caller signs each attempt afresh ([`crate::sign`] with the attempt's time), since
//! receivers refuse a `webhook-timestamp` older than a few minutes.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use tokenwarden_oauth::{HttpPolicy, OutboundClient, PolicyError, TransportError};
use url::Url;

/// The `user-agent` of every delivery.
pub const SENDER_USER_AGENT: &str = "tokenwarden-webhooks";
/// Time allowed to connect (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the whole attempt; the spec recommends 15 to 30 s.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Most bytes of an answer read; the rest is never fetched.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024;

/// What the attempt means for the delivery (Standard Webhooks, "Delivery success and
/// failure").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// A 2xx answer.
    Delivered,
    /// 410 Gone: the receiver wants no more; disable the endpoint.
    Gone,
    /// Anything else, 3xx included (redirects are not followed): try again later.
    Retry,
}

/// The result of one attempt, as recorded in the delivery log. `error` is a sentence
/// of our own: never the answer's body, the URL or anything signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub kind: OutcomeKind,
}

impl SendOutcome {
    fn retry(status_code: Option<u16>, error: &str) -> Self {
        Self {
            status_code,
            error: Some(error.to_owned()),
            kind: OutcomeKind::Retry,
        }
    }

    fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Self {
                status_code: Some(status),
                error: None,
                kind: OutcomeKind::Delivered,
            },
            410 => Self {
                status_code: Some(status),
                error: Some("the endpoint answered 410 Gone".to_owned()),
                kind: OutcomeKind::Gone,
            },
            300..=399 => Self::retry(
                Some(status),
                &format!("the endpoint answered HTTP {status}; redirects are not followed"),
            ),
            _ => Self::retry(
                Some(status),
                &format!("the endpoint answered HTTP {status}"),
            ),
        }
    }
}

/// The HTTP client could not be built (no TLS roots, for instance).
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client")]
pub struct SenderError(#[source] TransportError);

/// Delivers attempts. Cheap to clone; one per process is enough.
#[derive(Debug, Clone)]
pub struct Sender {
    client: OutboundClient,
}

impl Sender {
    /// The production sender; `allow_loopback` is the
    /// `TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS` setting (http and private addresses, for
    /// development and tests only).
    pub fn new(allow_loopback: bool) -> Result<Self, SenderError> {
        Self::with_policy(HttpPolicy {
            allow_loopback,
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TOTAL_TIMEOUT,
            max_body_bytes: MAX_RESPONSE_BYTES,
            resolver: None,
        })
    }

    /// A sender under another policy (shorter timeouts or an injected resolver in tests).
    /// Redirects stay off and the address checks stay on whatever the policy says.
    pub fn with_policy(policy: HttpPolicy) -> Result<Self, SenderError> {
        Ok(Self {
            client: policy.build().map_err(SenderError)?,
        })
    }

    /// POSTs `body` to `url` with the Standard Webhooks headers. `signature` is the
    /// `webhook-signature` value for this `event_id`, `timestamp` and `body`.
    pub async fn send(
        &self,
        url: &str,
        event_id: &str,
        timestamp: i64,
        body: &str,
        signature: &str,
    ) -> SendOutcome {
        let Ok(url) = Url::parse(url) else {
            return SendOutcome::retry(None, "the endpoint URL is not valid");
        };
        let request = match self.client.request(Method::POST, &url) {
            Ok(request) => request,
            Err(err) => return SendOutcome::retry(None, policy_words(&err)),
        };
        let request = request
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, SENDER_USER_AGENT)
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned());
        match self.client.send_streaming(request).await {
            Ok(response) => {
                let outcome = SendOutcome::from_status(response.status().as_u16());
                drain(response).await;
                outcome
            }
            Err(err) => SendOutcome::retry(None, transport_words(&err)),
        }
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] so that a well-behaved keep-alive connection can
/// be reused, and drops it: the status alone decides the outcome.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while read <= MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
}

fn policy_words(err: &PolicyError) -> &'static str {
    match err {
        PolicyError::Scheme(_) => "the endpoint URL must use https",
        PolicyError::NoHost => "the endpoint URL has no host",
        PolicyError::Credentials => "the endpoint URL must not contain credentials",
        PolicyError::BlockedAddress(_) => "the endpoint's address is not public",
    }
}

fn transport_words(err: &TransportError) -> &'static str {
    match err {
        TransportError::Policy(policy) => policy_words(policy),
        TransportError::Timeout(_) => "the endpoint did not answer in time",
        TransportError::Connect(_) => "could not connect to the endpoint",
        TransportError::BodyTooLarge(_) | TransportError::Other(_) => {
            "the request to the endpoint failed"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(SendOutcome::from_status(200).kind, OutcomeKind::Delivered);
        assert_eq!(SendOutcome::from_status(204).kind, OutcomeKind::Delivered);
        assert_eq!(SendOutcome::from_status(204).error, None);
        assert_eq!(SendOutcome::from_status(410).kind, OutcomeKind::Gone);
        for status in [301, 302, 307, 308, 400, 404, 429, 500, 503] {
            let outcome = SendOutcome::from_status(status);
            assert_eq!(outcome.kind, OutcomeKind::Retry, "{status}");
            assert_eq!(outcome.status_code, Some(status));
            assert!(outcome.error.unwrap().contains(&status.to_string()));
        }
    }
}
