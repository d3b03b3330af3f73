//! Bounded retries with exponential backoff for transient token endpoint failures.
//!
//! Opt-in: the caller decides what is safe to repeat. Refreshing is (a lost response
//! is the provider's problem to detect, RFC 9700 §4.14.2), revocation is, and
//! exchanging a code may be, though a provider that consumed the code before failing
//! will answer the retry with `invalid_grant`.

use std::future::Future;
use std::time::Duration;

use crate::token::TokenError;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 means no retry.
    pub attempts: u32,
    /// Delay before the first retry; doubled before each further one.
    pub base_delay: Duration,
    /// The longest wait between attempts. A `Retry-After` longer than this ends the
    /// retries: waiting less than the provider asked for is pointless, and waiting
    /// longer would hold the caller's request.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry) after `error`, or
    /// `None` when there is to be no retry.
    pub fn delay_before(&self, retry: u32, error: &TokenError) -> Option<Duration> {
        if !error.is_transient() || retry >= self.attempts {
            return None;
        }
        let backoff = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        match error.retry_after() {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(asked.max(backoff)),
            None => Some(backoff),
        }
    }

    /// Runs `operation` until it succeeds, fails for good, or the attempts run out.
    /// Returns the last error.
    pub async fn run<T, F, Fut>(&self, mut operation: F) -> Result<T, TokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TokenError>>,
    {
        let mut retry = 0;
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            retry += 1;
            let Some(delay) = self.delay_before(retry, &error) else {
                return Err(error);
            };
            tracing::info!(retry, delay_ms = delay.as_millis() as u64, error = %error, "retrying after a transient provider failure");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::ProviderError;
    use reqwest::StatusCode;

    fn transient(retry_after: Option<u64>) -> TokenError {
        TokenError::Transient {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            retry_after: retry_after.map(Duration::from_secs),
            source: None,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_attempt_limit() {
        let policy = RetryPolicy::default();
        let err = transient(None);
        assert_eq!(
            policy.delay_before(1, &err),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            policy.delay_before(2, &err),
            Some(Duration::from_millis(400))
        );
        assert_eq!(policy.delay_before(3, &err), None);
        let longer = RetryPolicy {
            attempts: 10,
            ..RetryPolicy::default()
        };
        assert_eq!(
            longer.delay_before(7, &err),
            Some(Duration::from_millis(12_800).min(longer.max_delay))
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay_before(1, &transient(Some(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay_before(1, &transient(Some(0))),
            Some(Duration::from_millis(200))
        );
        assert_eq!(policy.delay_before(1, &transient(Some(11))), None);
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let policy = RetryPolicy::default();
        let err = TokenError::InvalidGrant(ProviderError {
            error: "invalid_grant".into(),
            error_description: None,
            error_uri: None,
        });
        assert_eq!(policy.delay_before(1, &err), None);
    }
}
