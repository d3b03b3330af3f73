//! Bounded retries with exponential backoff for transient token endpoint failures.
//!
//! Opt-in: the caller decides what is safe to repeat ([`Repeat`]). Revocation is, and
//! exchanging a code may be, though a provider that consumed the code before failing
//! will answer the retry with `invalid_grant`. Refreshing is not, once the request may
//! have reached the provider: one that rotates refresh tokens may have used up the
//! token on the attempt whose answer was lost (a timeout, a reset connection, a 5xx
//! from a proxy in front of it), and would answer a retry with `invalid_grant`. So a
//! refresh is repeated only after a failure that provably happened before the request
//! left ([`RetryPolicy::run_refresh`]), and a failed cycle says whether an earlier
//! attempt failed transiently ([`CycleFailure::after_transient`]), since an
//! `invalid_grant` after one proves nothing about the grant.

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

/// Which failed attempts may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Every transient failure, also one after the request was sent (a timeout while
    /// waiting for the answer, a 5xx, a 429): for calls the provider may see twice
    /// (code exchange, revocation, client credentials).
    AnyTransient,
    /// Only a failure that provably happened before the request left (DNS, refused
    /// connection, TLS handshake, connect timeout; see [`TokenError::never_sent`]): for
    /// refresh, where a provider that rotates refresh tokens may have used the token up
    /// on an attempt whose answer was lost.
    UnsentOnly,
}

impl Repeat {
    /// Whether an attempt that failed with `error` may be repeated.
    pub fn allows(self, error: &TokenError) -> bool {
        match self {
            Self::AnyTransient => error.is_transient(),
            Self::UnsentOnly => error.is_transient() && error.never_sent(),
        }
    }
}

/// A retry cycle that failed: the last attempt's error, and what came before it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CycleFailure {
    /// The last attempt's error.
    #[source]
    pub error: TokenError,
    /// Whether an earlier attempt of the cycle failed transiently. After one, an
    /// `invalid_grant` is no proof that the grant is dead: the earlier attempt may have
    /// reached the provider and used up the code or rotated the refresh token.
    pub after_transient: bool,
}

impl CycleFailure {
    /// Whether the provider refused the grant for good: `invalid_grant` with no
    /// transient failure before it in the cycle.
    pub fn grant_refused(&self) -> bool {
        matches!(self.error, TokenError::InvalidGrant(_)) && !self.after_transient
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry) after `error`, or
    /// `None` when there is to be no retry. Any transient failure may be retried
    /// ([`Repeat::AnyTransient`]).
    pub fn delay_before(&self, retry: u32, error: &TokenError) -> Option<Duration> {
        self.delay_before_with(Repeat::AnyTransient, retry, error)
    }

    /// [`Self::delay_before`] for the failures `repeat` allows to be retried.
    pub fn delay_before_with(
        &self,
        repeat: Repeat,
        retry: u32,
        error: &TokenError,
    ) -> Option<Duration> {
        if !repeat.allows(error) || retry >= self.attempts {
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

    /// Runs `operation` until it succeeds, fails for good, or the attempts run out,
    /// retrying every transient failure ([`Repeat::AnyTransient`]). Returns the last
    /// error. Not for refresh: see [`Self::run_refresh`].
    pub async fn run<T, F, Fut>(&self, operation: F) -> Result<T, TokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TokenError>>,
    {
        self.run_with(Repeat::AnyTransient, operation)
            .await
            .map_err(|failure| failure.error)
    }

    /// Runs a refresh: retried only after failures before the request left
    /// ([`Repeat::UnsentOnly`]), so that a provider never sees the same refresh token
    /// twice because of us.
    pub async fn run_refresh<T, F, Fut>(&self, operation: F) -> Result<T, CycleFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TokenError>>,
    {
        self.run_with(Repeat::UnsentOnly, operation).await
    }

    /// Runs `operation` until it succeeds, fails in a way `repeat` does not retry, or
    /// the attempts run out.
    pub async fn run_with<T, F, Fut>(
        &self,
        repeat: Repeat,
        mut operation: F,
    ) -> Result<T, CycleFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TokenError>>,
    {
        let mut retry = 0;
        let mut after_transient = false;
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            retry += 1;
            let Some(delay) = self.delay_before_with(repeat, retry, &error) else {
                if error.is_transient() && !repeat.allows(&error) {
                    tracing::info!(
                        error = %error,
                        "not retrying: the request may have reached the provider"
                    );
                }
                return Err(CycleFailure {
                    error,
                    after_transient,
                });
            };
            after_transient |= error.is_transient();
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

    /// What a request to `url` fails with, through the real client.
    async fn failure_at(url: &str, timeout: Duration) -> TokenError {
        let http = crate::http::HttpPolicy {
            allow_loopback: true,
            timeout,
            ..crate::http::HttpPolicy::default()
        }
        .build()
        .unwrap();
        let url = url::Url::parse(url).unwrap();
        let request = http.request(reqwest::Method::POST, &url).unwrap();
        let err = http.send(request, chrono::Utc::now()).await.unwrap_err();
        TokenError::from(err)
    }

    /// A refused connection: nothing listens on the port.
    async fn refused_connection() -> TokenError {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        failure_at(
            &format!("http://127.0.0.1:{port}/token"),
            Duration::from_secs(5),
        )
        .await
    }

    /// A timeout after the request was sent: the server reads it and never answers.
    async fn timeout_after_sending() -> TokenError {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let err = failure_at(
            &format!("http://127.0.0.1:{port}/token"),
            Duration::from_millis(300),
        )
        .await;
        held.abort();
        err
    }

    #[tokio::test]
    async fn only_failures_before_the_request_left_count_as_never_sent() {
        let refused = refused_connection().await;
        assert!(refused.is_transient(), "{refused:?}");
        assert!(refused.never_sent(), "{refused:?}");
        let timed_out = timeout_after_sending().await;
        assert!(
            matches!(
                timed_out,
                TokenError::Transient {
                    source: Some(crate::http::TransportError::Timeout(_)),
                    ..
                }
            ),
            "{timed_out:?}"
        );
        assert!(!timed_out.never_sent());
        assert!(!transient(None).never_sent(), "a 503 is an answer");
        assert!(!transient(Some(1)).never_sent());

        let policy = RetryPolicy::default();
        assert!(
            policy
                .delay_before_with(Repeat::UnsentOnly, 1, &refused)
                .is_some()
        );
        for sent in [&timed_out, &transient(None)] {
            assert_eq!(policy.delay_before_with(Repeat::UnsentOnly, 1, sent), None);
            assert!(policy.delay_before(1, sent).is_some(), "{sent:?}");
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(1),
        }
    }

    fn invalid_grant() -> TokenError {
        TokenError::InvalidGrant(ProviderError {
            error: "invalid_grant".into(),
            error_description: None,
            error_uri: None,
        })
    }

    #[tokio::test]
    async fn a_refresh_is_not_repeated_after_an_answer_but_other_calls_are() {
        let calls = std::cell::Cell::new(0);
        let failure = fast()
            .run_refresh(|| async {
                calls.set(calls.get() + 1);
                Err::<(), _>(transient(None))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert!(failure.error.is_transient());
        assert!(!failure.after_transient);

        calls.set(0);
        let err = fast()
            .run(|| async {
                calls.set(calls.get() + 1);
                Err::<(), _>(transient(None))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.get(), 3);
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn a_refresh_is_repeated_after_a_refused_connection() {
        let refused = std::cell::RefCell::new(Some(refused_connection().await));
        let calls = std::cell::Cell::new(0);
        let value = fast()
            .run_refresh(|| async {
                calls.set(calls.get() + 1);
                match refused.borrow_mut().take() {
                    Some(err) => Err(err),
                    None => Ok(7),
                }
            })
            .await
            .unwrap();
        assert_eq!((value, calls.get()), (7, 2));
    }

    #[tokio::test]
    async fn invalid_grant_after_a_transient_failure_is_not_a_refused_grant() {
        let refused = std::cell::RefCell::new(Some(refused_connection().await));
        let failure = fast()
            .run_refresh(|| async {
                match refused.borrow_mut().take() {
                    Some(err) => Err::<(), _>(err),
                    None => Err(invalid_grant()),
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(failure.error, TokenError::InvalidGrant(_)));
        assert!(failure.after_transient);
        assert!(!failure.grant_refused());

        let failure = fast()
            .run_refresh(|| async { Err::<(), _>(invalid_grant()) })
            .await
            .unwrap_err();
        assert!(!failure.after_transient);
        assert!(failure.grant_refused());
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
