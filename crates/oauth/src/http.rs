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

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::{Host, Url};
use zeroize::Zeroizing;

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

/// A lookup's answer.
pub type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Looks up a host name's addresses. The default is the system resolver; tests inject
/// their own to point names at addresses of their choice.
pub trait HostResolver: Send + Sync + fmt::Debug {
    /// Every address `host` resolves to.
    fn lookup(&self, host: &str) -> Lookup;
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

/// A URL or address the policy refuses. Names the host, never the path or query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Only `https` is allowed (plus `http` with `allow_loopback`).
    #[error("URL scheme `{0}` is not allowed; use https")]
    Scheme(String),
    /// The URL has no host.
    #[error("URL has no host")]
    NoHost,
    /// `user:password@` in a provider URL would be sent as Basic credentials.
    #[error("URL must not contain credentials")]
    Credentials,
    /// The host is, or resolves to, a loopback, private or otherwise non-global address.
    #[error("host `{0}` is not a public address")]
    BlockedAddress(String),
}

/// A failed outbound call, before any provider semantics.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The policy refused the URL or the address it resolved to.
    #[error("outbound request refused: {0}")]
    Policy(#[from] PolicyError),
    /// Connect or total timeout.
    #[error("request to the provider timed out")]
    Timeout(#[source] reqwest::Error),
    /// DNS failure, refused connection, TLS failure.
    #[error("could not connect to the provider")]
    Connect(#[source] reqwest::Error),
    /// The body exceeded [`HttpPolicy::max_body_bytes`].
    #[error("response body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// Anything else reqwest reports.
    #[error("HTTP request to the provider failed")]
    Other(#[source] reqwest::Error),
}

impl TransportError {
    /// Worth retrying: the request may never have reached the provider, or it was slow.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connect(_))
    }

    /// Sorts a reqwest error; the URL is dropped so that no query string reaches a log.
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        if let Some(blocked) = find_blocked_host(&err) {
            return Self::Policy(PolicyError::BlockedAddress(blocked));
        }
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout(err)
        } else if err.is_connect() {
            Self::Connect(err)
        } else {
            Self::Other(err)
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

/// A failed GET of a JSON document (discovery, JWKS, userinfo).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed or was refused by the policy.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A status other than 200. Redirects land here too: none is followed.
    #[error("the provider answered HTTP {0}")]
    Status(StatusCode),
    /// The body is not a JSON object.
    #[error("the provider's answer is not a JSON object (content type {})", content_type.as_deref().unwrap_or("none"))]
    Malformed {
        /// The `Content-Type` header.
        content_type: Option<String>,
    },
}

impl From<PolicyError> for FetchError {
    fn from(err: PolicyError) -> Self {
        Self::Transport(TransportError::Policy(err))
    }
}

impl OutboundClient {
    /// GETs a JSON object, with `Authorization: Bearer` when a token is given.
    pub async fn get_json(
        &self,
        url: &Url,
        bearer: Option<&crate::secret::AccessToken>,
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

/// Whether an address is globally reachable, i.e. fit to be a provider endpoint.
///
/// Refused: unspecified, loopback, private (RFC 1918), shared/CGNAT (RFC 6598),
/// link-local (which holds the cloud metadata address 169.254.169.254), IETF protocol
/// assignments, documentation and benchmarking ranges, multicast, reserved and
/// broadcast; in IPv6 also unique-local (fc00::/7, which holds AWS's fd00:ec2::254),
/// site-local, discard, and any IPv6 form that embeds a refused IPv4 address
/// (IPv4-mapped, NAT64, 6to4). See the IANA special-purpose address registries
/// (RFC 6890).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", includes the unspecified address
        ([10, 0, 0, 0], 8),      // private, RFC 1918
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT), RFC 6598
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, incl. cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // private, RFC 1918
        ([192, 0, 0, 0], 24),    // IETF protocol assignments, RFC 6890
        ([192, 0, 2, 0], 24),    // documentation TEST-NET-1, RFC 5737
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast, RFC 7526
        ([192, 168, 0, 0], 16),  // private, RFC 1918
        ([198, 18, 0, 0], 15),   // benchmarking, RFC 2544
        ([198, 51, 100, 0], 24), // documentation TEST-NET-2
        ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
    ];
    !REFUSED.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn embedded_v4(ip: Ipv6Addr, shift: u32) -> Ipv4Addr {
    // Truncation is the point: the 32 bits at `shift` are the embedded address.
    Ipv4Addr::from(((u128::from(ip) >> shift) & 0xffff_ffff) as u32)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) and NAT64 64:ff9b::/96 (RFC 6052)
    // reach the embedded IPv4 address, so they are judged by it.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return is_global_v4(embedded_v4(ip, 0));
    }
    // 6to4 2002::/16 (RFC 3056) carries the IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return is_global_v4(embedded_v4(ip, 80));
    }
    const REFUSED: &[([u16; 8], u32)] = &[
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (Teredo, ORCHID, ...)
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation, RFC 3849
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation, RFC 9637
    ];
    // Only 2000::/3 is allocated global unicast; everything else (::, ::1, the
    // deprecated IPv4-compatible ::/96, 100::/64 discard, fc00::/7 unique-local,
    // fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast) is not global.
    in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
        && !REFUSED.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

/// The resolver installed when loopback is not allowed (or a lookup is injected): a
/// name that resolves to any non-global address is refused as a whole, so that a
/// rebinding name cannot make us connect to its private half.
#[derive(Debug)]
struct PolicyResolver {
    lookup: Option<Arc<dyn HostResolver>>,
    global_only: bool,
}

/// The resolver's refusal, recognised again in [`TransportError::from_reqwest`].
#[derive(Debug, thiserror::Error)]
#[error("host `{0}` resolves to a non-global address")]
struct BlockedHost(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        let global_only = self.global_only;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = match lookup {
                Some(lookup) => lookup
                    .lookup(&host)
                    .await?
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            if global_only && addrs.iter().any(|addr| !is_global(addr.ip())) {
                tracing::warn!(http.host = %host, "refused a provider host that resolves to a non-global address");
                return Err(Box::new(BlockedHost(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn find_blocked_host(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<BlockedHost>() {
            return Some(blocked.0.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(s: &str) -> bool {
        is_global(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn public_addresses_are_global() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "140.82.112.3",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(global(ip), "{ip} should be global");
        }
    }

    #[test]
    fn loopback_private_link_local_and_special_ranges_are_not_global() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
        ] {
            assert!(!global(ip), "{ip} should not be global");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_refused_ipv4_address_are_not_global() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(!global(ip), "{ip} should not be global");
        }
    }

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
