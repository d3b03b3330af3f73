//! Which headers a proxied request and its response carry across: the caller's
//! credentials, hop-by-hop and forwarding headers stay behind one way, cookies and
//! hop-by-hop headers the other.

use reqwest::header::{self, HeaderMap, HeaderName};

/// Headers named by `Connection` (RFC 9110 §7.6.1), lower-cased.
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the `Proxy-*` family, which concern one
/// connection and must not be forwarded.
fn is_hop_by_hop(name: &HeaderName, named: &[String]) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || n.starts_with("proxy-")
        || named.iter().any(|m| m == n)
}

/// The caller's headers as they may reach the provider: without its credentials
/// (`Authorization`, `Cookie`, `Proxy-Authorization`), `Host`, hop-by-hop headers,
/// `Expect` (answered by our own server), forwarding headers that would reveal or forge
/// the caller's address, and tokenwarden's own `X-Tokenwarden-*` controls.
pub fn forward_request_headers(incoming: &HeaderMap) -> HeaderMap {
    let named = connection_named(incoming);
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        let dropped = is_hop_by_hop(name, &named)
            || matches!(
                n,
                "authorization" | "cookie" | "host" | "expect" | "forwarded"
            )
            || n.starts_with("x-forwarded-")
            || n.starts_with("x-tokenwarden-");
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The provider's response headers as they may reach the caller: without hop-by-hop
/// headers and cookies (a provider session must not end up in the caller's client, and
/// the caller talks to tokenwarden's origin, not the provider's).
pub fn forward_response_headers(upstream: &HeaderMap) -> HeaderMap {
    let named = connection_named(upstream);
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if !(is_hop_by_hop(name, &named) || n == "set-cookie" || n == "set-cookie2") {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn caller_credentials_hop_by_hop_and_forwarding_headers_are_not_forwarded() {
        let incoming = headers(&[
            ("authorization", "Bearer twk_secret"),
            ("cookie", "session=1"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("host", "tokenwarden.local"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-host", "internal"),
            ("forwarded", "for=10.0.0.1"),
            ("expect", "100-continue"),
            ("x-tokenwarden-base-url", "https://api.example.com"),
            ("accept", "application/json"),
            ("content-type", "text/plain"),
            ("x-custom", "a"),
            ("x-custom", "b"),
        ]);
        let out = forward_request_headers(&incoming);
        assert_eq!(names(&out), ["accept", "content-type", "x-custom"]);
        assert_eq!(out.get_all("x-custom").iter().count(), 2);
    }

    #[test]
    fn upstream_cookies_and_hop_by_hop_headers_do_not_reach_the_caller() {
        let upstream = headers(&[
            ("set-cookie", "sid=1"),
            ("set-cookie2", "sid=2"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("keep-alive", "timeout=5"),
            ("content-type", "application/json"),
            ("location", "https://elsewhere.test/"),
            ("cache-control", "max-age=60"),
            ("x-ratelimit-remaining", "42"),
        ]);
        let out = forward_response_headers(&upstream);
        assert_eq!(
            names(&out),
            [
                "cache-control",
                "content-type",
                "location",
                "x-ratelimit-remaining"
            ]
        );
    }
}
