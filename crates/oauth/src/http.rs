//! Outbound HTTP policy: the one place that decides which provider URLs and addresses
//! tokenwarden may call, and how.
//!
//! Every call this crate makes (token, revocation, discovery, JWKS, userinfo) goes
//! through an [`OutboundClient`] built here, which
//! - follows no redirects: a token endpoint that redirects would make us resend a code
//!   or secret to wherever it points (RFC 9700 §4.11, RFC 6749 §10.12);
//! - refuses `http://` and any non-global address (loopback, private, link-local, the
//!   cloud metadata address, ...) so a provider definition cannot be used to reach the
//!   server's own network (SSRF), unless `allow_loopback` is set for development;
//! - checks resolved addresses in the DNS resolver itself, so that the address checked
//!   is the address connected to (no time-of-check/time-of-use gap for DNS rebinding),
//!   and IP literals before the request, since the resolver never sees those;
//! - ignores `HTTP(S)_PROXY` variables: a proxy would resolve names itself and bypass
//!   the resolver check;
//! - bounds connect time, total time and response size.
//!
//! The API proxy reuses this module with its own timeouts and body limit; its URL and
//! header rules are in [`crate::proxy`]. The resolver can be replaced ([`HostResolver`])
//! so that tests can make a name resolve to any address without touching real DNS.
//!
//! This file holds the policy and the client; the address ranges are in `http_address`,
//! the resolver in `http_resolver` and the errors in `http_error`, re-exported here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::{Host, Url};
use zeroize::Zeroizing;

pub use crate::http_address::is_global;
pub use crate::http_error::{FetchError, PolicyError, TransportError};
use crate::http_resolver::PolicyResolver;
pub use crate::http_resolver::{HostResolver, Lookup};
use crate::secret::AccessToken;

/// What outbound calls may do. `Default` is the production setting.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Allow `http://` and non-global addresses (the `TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS`
    /// setting). For development and tests only.
    pub allow_loopback: bool,
    /// Time allowed to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Largest response body read; token responses and metadata are a few KiB.
    pub max_body_bytes: usize,
    /// Where host names are looked up; `None` is the system resolver. Whatever answers,
    /// the addresses are checked against the policy before any connection.
    pub resolver: Option<Arc<dyn HostResolver>>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            max_body_bytes: 1024 * 1024,
            resolver: None,
        }
    }
}

/// The status line facts of a response, kept apart from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Content-Type` header, when present and readable.
    pub content_type: Option<String>,
    /// `Retry-After` (RFC 9110 §10.2.3), as a delay from `now`.
    pub retry_after: Option<Duration>,
}

/// The reqwest client every outbound call goes through, with the policy it enforces.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    policy: HttpPolicy,
}

impl HttpPolicy {
    /// Builds the client that enforces this policy.
    pub fn build(self) -> Result<OutboundClient, TransportError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .https_only(!self.allow_loopback)
            .user_agent(concat!("tokenwarden/", env!("CARGO_PKG_VERSION")));
        if !self.allow_loopback || self.resolver.is_some() {
            builder = builder.dns_resolver(Arc::new(PolicyResolver {
                lookup: self.resolver.clone(),
                global_only: !self.allow_loopback,
            }));
        }
        let client = builder.build().map_err(TransportError::Other)?;
        Ok(OutboundClient {
            client,
            policy: self,
        })
    }

    /// Checks a URL before it is stored or called: scheme, no credentials, and an IP
    /// literal host must be global. Host names are checked again when resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), PolicyError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback => {}
            other => return Err(PolicyError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyError::Credentials);
        }
        let ip = match url.host() {
            None => return Err(PolicyError::NoHost),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        if self.allow_loopback || is_global(ip) {
            Ok(())
        } else {
            Err(PolicyError::BlockedAddress(ip.to_string()))
        }
    }
}

impl OutboundClient {
    /// The policy this client enforces.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Starts a request after checking the URL against the policy.
    pub fn request(&self, method: Method, url: &Url) -> Result<RequestBuilder, PolicyError> {
        self.policy.check_url(url)?;
        Ok(self.client.request(method, url.clone()))
    }

    /// Sends a request and returns the response with its body unread, for callers that
    /// stream it (the API proxy) and bound it themselves.
    pub async fn send_streaming(
        &self,
        request: RequestBuilder,
    ) -> Result<Response, TransportError> {
        request.send().await.map_err(TransportError::from_reqwest)
    }

    /// Sends a request and reads at most `max_body_bytes` of its body. The body is
    /// zeroized when dropped, since token responses carry tokens.
    pub async fn send(
        &self,
        request: RequestBuilder,
        now: DateTime<Utc>,
    ) -> Result<(ResponseMeta, Zeroizing<Vec<u8>>), TransportError> {
        let response = request.send().await.map_err(TransportError::from_reqwest)?;
        let meta = response_meta(&response, now);
        let body = read_limited(response, self.policy.max_body_bytes).await?;
        Ok((meta, body))
    }
}

impl OutboundClient {
    /// GETs a JSON object, with `Authorization: Bearer` when a token is given.
    pub async fn get_json(
        &self,
        url: &Url,
        bearer: Option<&AccessToken>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, FetchError> {
        let mut request = self
            .request(Method::GET, url)?
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        // `now` only dates Retry-After, which these callers do not use.
        let (meta, body) = self.send(request, Utc::now()).await?;
        if meta.status != StatusCode::OK {
            return Err(FetchError::Status(meta.status));
        }
        match serde_json::from_slice(&body) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(FetchError::Malformed {
                content_type: meta.content_type,
            }),
        }
    }
}

fn response_meta(response: &Response, now: DateTime<Utc>) -> ResponseMeta {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    ResponseMeta {
        status: response.status(),
        content_type: header(CONTENT_TYPE).map(str::to_owned),
        retry_after: header(RETRY_AFTER).and_then(|v| parse_retry_after(v, now)),
    }
}

async fn read_limited(
    mut response: Response,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, TransportError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(TransportError::BodyTooLarge(limit));
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(TransportError::from_reqwest)?
    {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in
/// the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate is a subset of the RFC 2822 syntax chrono reads.
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn strict_policy_accepts_https_names_and_public_literals_only() {
        let strict = HttpPolicy::default();
        assert_eq!(strict.check_url(&url("https://github.com/login")), Ok(()));
        assert_eq!(strict.check_url(&url("https://8.8.8.8/x")), Ok(()));
        assert_eq!(
            strict.check_url(&url("http://github.com/")),
            Err(PolicyError::Scheme("http".into()))
        );
        assert_eq!(
            strict.check_url(&url("https://127.0.0.1:8443/token")),
            Err(PolicyError::BlockedAddress("127.0.0.1".into()))
        );
        assert_eq!(
            strict.check_url(&url("https://[::ffff:169.254.169.254]/")),
            Err(PolicyError::BlockedAddress("::ffff:169.254.169.254".into()))
        );
        // The URL parser turns these spellings into the IPv4 literal they denote.
        assert_eq!(
            strict.check_url(&url("https://0x7f.1/")),
            Err(PolicyError::BlockedAddress("127.0.0.1".into()))
        );
        assert_eq!(
            strict.check_url(&url("https://2130706433/")),
            Err(PolicyError::BlockedAddress("127.0.0.1".into()))
        );
        assert_eq!(
            strict.check_url(&url("https://user:pw@github.com/")),
            Err(PolicyError::Credentials)
        );
        assert_eq!(
            strict.check_url(&url("file:///etc/passwd")),
            Err(PolicyError::Scheme("file".into()))
        );
    }

    #[test]
    fn loopback_policy_accepts_http_and_private_literals() {
        let dev = HttpPolicy {
            allow_loopback: true,
            ..HttpPolicy::default()
        };
        assert_eq!(dev.check_url(&url("http://127.0.0.1:9999/token")), Ok(()));
        assert_eq!(dev.check_url(&url("http://10.0.0.5/")), Ok(()));
        assert_eq!(
            dev.check_url(&url("ftp://127.0.0.1/")),
            Err(PolicyError::Scheme("ftp".into()))
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    /// Answers every name with fixed addresses, and remembers what it was asked.
    #[derive(Debug)]
    struct FixedResolver {
        answer: Vec<IpAddr>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl HostResolver for FixedResolver {
        fn lookup(&self, host: &str) -> Lookup {
            self.asked.lock().unwrap().push(host.to_owned());
            let answer = self.answer.clone();
            Box::pin(async move { Ok(answer) })
        }
    }

    async fn blocked_through(answer: &[&str]) -> Result<Response, TransportError> {
        let resolver = Arc::new(FixedResolver {
            answer: answer.iter().map(|a| a.parse().unwrap()).collect(),
            asked: Default::default(),
        });
        let client = HttpPolicy {
            resolver: Some(resolver.clone()),
            ..HttpPolicy::default()
        }
        .build()
        .unwrap();
        let request = client
            .request(Method::GET, &url("https://internal.example.test/x"))
            .unwrap();
        let result = client.send_streaming(request).await;
        assert_eq!(*resolver.asked.lock().unwrap(), ["internal.example.test"]);
        result
    }

    #[tokio::test]
    async fn an_injected_resolver_pointing_at_loopback_is_refused_before_connecting() {
        let result = blocked_through(&["127.0.0.1"]).await;
        assert!(
            matches!(result, Err(TransportError::Policy(PolicyError::BlockedAddress(ref h))) if h == "internal.example.test"),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_name_with_one_private_address_among_public_ones_is_refused() {
        let result = blocked_through(&["8.8.8.8", "10.0.0.7"]).await;
        assert!(
            matches!(
                result,
                Err(TransportError::Policy(PolicyError::BlockedAddress(_)))
            ),
            "{result:?}"
        );
    }
}
