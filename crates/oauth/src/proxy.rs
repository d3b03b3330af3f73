//! The API proxy's outbound rules: where a proxied request may go and which headers
//! cross in each direction. Pure functions over URLs and header maps, so that the rule
//! "a proxied request never leaves the provider's API base" can be tested and fuzzed
//! without a network.
//!
//! The path is checked as the caller sent it (still percent-encoded): a proxy that
//! decoded first and checked afterwards would let `%2e%2e` or `%2f` through to an
//! upstream that decodes again. Anything that could be read as a dot segment or an
//! extra separator, at any level of decoding, is refused rather than normalised.

use percent_encoding::percent_decode;
use reqwest::header::{self, HeaderMap, HeaderName};
use url::Url;

/// Longest path accepted after `/v1/proxy/{connection_id}`.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a proxied path was refused. Names the rule, never echoes the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyPathError {
    /// A non-empty path must start with `/`.
    #[error("the path must start with `/`")]
    NoLeadingSlash,
    /// `//` would let some servers read the next segment as a host or reset the path.
    #[error("the path must not contain an empty segment (`//`)")]
    EmptySegment,
    /// `.` or `..`, plain or percent-encoded, also with matrix parameters (`..;x`,
    /// `.%3b`), which servers that strip them read as a dot segment.
    #[error("the path must not contain `.` or `..` segments")]
    DotSegment,
    /// `%2e`, `%2f` or `%5c`, or a separator that appears after decoding.
    #[error("the path must not contain encoded dots, slashes or backslashes")]
    EncodedSeparator,
    /// WHATWG URL parsers read `\` as `/`.
    #[error("the path must not contain a backslash")]
    Backslash,
    /// NUL and other control characters, plain or encoded.
    #[error("the path must not contain control characters")]
    Control,
    /// `%` not followed by two hex digits.
    #[error("the path contains an invalid percent-escape")]
    BadEscape,
    /// A character outside RFC 3986 `pchar` (query and fragment have no place here).
    #[error("the path contains a character not allowed in a URL path")]
    Character,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("the path is too long")]
    TooLong,
    /// The built URL left the base (a last check; the rules above should prevent it).
    #[error("the path leads outside the provider's API base URL")]
    OutsideBase,
}

/// RFC 3986 §3.3 `pchar` plus `/`, with `%` checked separately.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

fn has_encoded_separator(s: &[u8]) -> bool {
    s.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_lowercase(), w[2].to_ascii_lowercase()),
                (b'2', b'e') | (b'2', b'f') | (b'5', b'c')
            )
    })
}

fn valid_escapes(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The part of a segment before its first `;` or `%3b` (in either case): what a server
/// that strips matrix parameters (Tomcat, Spring: `/..;jsessionid=x/`) reads as the
/// segment.
fn before_parameters(s: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b';' {
            return &s[..i];
        }
        if s[i] == b'%'
            && s.get(i + 1) == Some(&b'3')
            && s.get(i + 2).is_some_and(|b| b.eq_ignore_ascii_case(&b'b'))
        {
            return &s[..i];
        }
        i += 1;
    }
    s
}

/// One segment at one level of decoding (level 0 is the raw text).
fn check_segment_level(s: &[u8], level: usize) -> Result<(), ProxyPathError> {
    let name = before_parameters(s);
    if name == b"." || name == b".." {
        return Err(ProxyPathError::DotSegment);
    }
    if s.iter().any(|b| b.is_ascii_control()) {
        return Err(ProxyPathError::Control);
    }
    if s.contains(&b'\\') {
        return Err(if level == 0 {
            ProxyPathError::Backslash
        } else {
            ProxyPathError::EncodedSeparator
        });
    }
    if (level > 0 && s.contains(&b'/')) || has_encoded_separator(s) {
        return Err(ProxyPathError::EncodedSeparator);
    }
    Ok(())
}

/// Checks one raw segment and every decoding of it, so that an upstream that decodes
/// twice (`%252e` → `%2e` → `.`) sees nothing the rules refuse either.
fn check_segment(raw: &[u8]) -> Result<(), ProxyPathError> {
    if raw.is_empty() {
        return Err(ProxyPathError::EmptySegment);
    }
    let mut current = raw.to_vec();
    for level in 0..4 {
        check_segment_level(&current, level)?;
        if !current.contains(&b'%') {
            return Ok(());
        }
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    // Four levels of encoding is no legitimate client's doing.
    Err(ProxyPathError::EncodedSeparator)
}

/// Checks a raw (still percent-encoded) path as it follows `/v1/proxy/{connection_id}`:
/// empty, or `/` followed by segments separated by single slashes; a trailing slash is
/// kept.
pub fn check_proxy_path(raw_path: &str) -> Result<(), ProxyPathError> {
    let bytes = raw_path.as_bytes();
    if bytes.len() > MAX_PATH_LEN {
        return Err(ProxyPathError::TooLong);
    }
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(ProxyPathError::Control);
    }
    if bytes.contains(&b'\\') {
        return Err(ProxyPathError::Backslash);
    }
    // Non-ASCII bytes are outside pchar too.
    if !bytes.iter().all(|b| is_path_char(*b)) {
        return Err(ProxyPathError::Character);
    }
    if !valid_escapes(bytes) {
        return Err(ProxyPathError::BadEscape);
    }
    let Some(rest) = raw_path.strip_prefix('/') else {
        return Err(ProxyPathError::NoLeadingSlash);
    };
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for segment in rest.split('/') {
        check_segment(segment.as_bytes())?;
    }
    Ok(())
}

/// The base path without its trailing slash (`""` for the root).
fn base_prefix(base: &Url) -> &str {
    base.path().trim_end_matches('/')
}

/// Whether `url` has `base`'s origin and lies at or under `base`'s path.
pub fn is_within_base(base: &Url, url: &Url) -> bool {
    if url.origin() != base.origin()
        || url.username() != base.username()
        || url.password() != base.password()
    {
        return false;
    }
    let prefix = base_prefix(base);
    let path = url.path();
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Builds the upstream URL: `base` + `raw_path` + `?raw_query`. `raw_path` is what
/// follows `/v1/proxy/{connection_id}` in the request line, undecoded; `raw_query` is
/// the caller's query string, passed on as it is except for the characters the URL
/// Standard never leaves literal in an `https` query (space, `"`, `'`, `<`, `>` and
/// non-ASCII), which it percent-encodes: the same query to a server that decodes it,
/// but not byte for byte (found by the `proxy_target` fuzz target). The result always
/// has `base`'s origin and starts with its path.
pub fn proxy_target(
    base: &Url,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<Url, ProxyPathError> {
    check_proxy_path(raw_path)?;
    if raw_query.is_some_and(|q| q.bytes().any(|b| b.is_ascii_control() || b == b'#')) {
        return Err(ProxyPathError::Character);
    }
    let mut url = base.clone();
    url.set_fragment(None);
    url.set_path(&format!("{}{raw_path}", base_prefix(base)));
    url.set_query(raw_query);
    if !is_within_base(base, &url) {
        return Err(ProxyPathError::OutsideBase);
    }
    Ok(url)
}

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

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn target(base: &str, path: &str, query: Option<&str>) -> Result<String, ProxyPathError> {
        proxy_target(&url(base), path, query).map(|u| u.to_string())
    }

    #[test]
    fn paths_and_queries_are_appended_to_the_base() {
        assert_eq!(
            target(
                "https://api.github.com",
                "/user/repos",
                Some("per_page=5&q=a+b")
            ),
            Ok("https://api.github.com/user/repos?per_page=5&q=a+b".into())
        );
        assert_eq!(
            target("https://gitlab.com/api/v4", "/projects/1%2Bx/issues", None),
            Ok("https://gitlab.com/api/v4/projects/1%2Bx/issues".into())
        );
        assert_eq!(
            target("https://www.googleapis.com/", "/drive/v3/files/", None),
            Ok("https://www.googleapis.com/drive/v3/files/".into())
        );
        assert_eq!(
            target("http://127.0.0.1:9/api/", "", None),
            Ok("http://127.0.0.1:9/api".into())
        );
        assert_eq!(
            target("https://x.test/a", "/", Some("")),
            Ok("https://x.test/a/?".into())
        );
        assert_eq!(
            target("https://x.test/a", "/@evil.test/b:c", None),
            Ok("https://x.test/a/@evil.test/b:c".into())
        );
    }

    #[test]
    fn traversal_and_ambiguous_paths_are_refused() {
        use ProxyPathError::*;
        for (path, expected) in [
            ("/..", DotSegment),
            ("/a/../b", DotSegment),
            ("/a/./b", DotSegment),
            ("/.", DotSegment),
            ("/a/..", DotSegment),
            ("/a/../", DotSegment),
            ("/..;", DotSegment),
            ("/.;", DotSegment),
            ("/a/..;/b", DotSegment),
            ("/a/..;jsessionid=x/b", DotSegment),
            ("/a/.;x=1/b", DotSegment),
            ("/..;a;b", DotSegment),
            ("/.%3b", DotSegment),
            ("/..%3bx", DotSegment),
            ("/..%3B", DotSegment),
            ("/a/..%253b/b", DotSegment),
            ("/%2e%2e;x", EncodedSeparator),
            ("/%2E%2E%3B", EncodedSeparator),
            ("/%252e%252e%253b", EncodedSeparator),
            ("/%2e%2e/x", EncodedSeparator),
            ("/%2E%2e", EncodedSeparator),
            ("/%2e", EncodedSeparator),
            ("/.%2e/x", EncodedSeparator),
            ("/a%2fb", EncodedSeparator),
            ("/a%2F..", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/%252e%252e/x", EncodedSeparator),
            ("/%25252e", EncodedSeparator),
            ("/a\\b", Backslash),
            ("/..\\x", Backslash),
            ("//evil.test/x", EmptySegment),
            ("/a//b", EmptySegment),
            ("/a/\0", Control),
            ("/a%00b", Control),
            ("/a%0d%0aHost:x", Control),
            ("/a\tb", Control),
            ("/a%zz", BadEscape),
            ("/a%2", BadEscape),
            ("/a b", Character),
            ("/a?b", Character),
            ("/a#b", Character),
            ("/ä", Character),
            ("/a<b>", Character),
            ("relative", NoLeadingSlash),
        ] {
            assert_eq!(
                target("https://api.example.com/v1", path, None),
                Err(expected),
                "{path:?}"
            );
        }
        assert_eq!(
            target(
                "https://api.example.com",
                &format!("/{}", "a".repeat(5000)),
                None
            ),
            Err(TooLong)
        );
    }

    #[test]
    fn matrix_parameters_on_a_dot_segment_are_refused_at_every_level_of_decoding() {
        for path in [
            "/..;",
            "/.;",
            "/..;jsessionid=x",
            "/a/..;/b",
            "/a/.;/b",
            "/..%3b",
            "/.%3B",
            "/..%3Bx=1",
            "/..%253b",
            "/..%25253b",
            "/%2e%2e;x",
            "/%2E%2E%3B",
            "/.%2e%3b",
            "/%252e%252e%253b/x",
            "/%2e;",
        ] {
            assert!(check_proxy_path(path).is_err(), "{path:?}");
        }
        // A segment that only starts with dots, or whose parameters hold them, is not a
        // dot segment.
        for path in [
            "/...;x",
            "/.well-known;x",
            "/..a;b",
            "/a;..",
            "/a;.",
            "/a%3b..",
            "/;x",
            "/a;",
            "/x..;",
            "/v1;..;/b",
        ] {
            assert_eq!(check_proxy_path(path), Ok(()), "{path:?}");
        }
    }

    #[test]
    fn a_query_cannot_smuggle_a_fragment_or_control_characters() {
        assert_eq!(
            target("https://x.test", "/a", Some("q=1#frag")),
            Err(ProxyPathError::Character)
        );
        assert_eq!(
            target("https://x.test", "/a", Some("q=%0d%0a")),
            Ok("https://x.test/a?q=%0d%0a".into())
        );
    }

    #[test]
    fn within_base_requires_the_origin_and_a_segment_boundary() {
        let base = url("https://api.example.com/v1");
        assert!(is_within_base(&base, &url("https://api.example.com/v1")));
        assert!(is_within_base(&base, &url("https://api.example.com/v1/x")));
        assert!(!is_within_base(&base, &url("https://api.example.com/v10")));
        assert!(!is_within_base(&base, &url("https://api.example.com/")));
        assert!(!is_within_base(&base, &url("http://api.example.com/v1/x")));
        assert!(!is_within_base(
            &base,
            &url("https://api.example.com:8443/v1/x")
        ));
        assert!(!is_within_base(&base, &url("https://evil.test/v1/x")));
        assert!(!is_within_base(
            &base,
            &url("https://u:p@api.example.com/v1/x")
        ));
    }

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

    mod property {
        use super::super::*;
        use proptest::prelude::*;

        const BASES: [&str; 5] = [
            "https://api.github.com",
            "https://gitlab.com/api/v4",
            "https://www.googleapis.com/",
            "http://127.0.0.1:8080/api/",
            "https://[2001:db8::1]:8443/x/y",
        ];

        /// Pieces an attacker would combine: separators, dots, escapes of both.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("/".to_owned()),
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just("%2e".to_owned()),
                Just("%2E".to_owned()),
                Just("%2f".to_owned()),
                Just("%5c".to_owned()),
                Just("%25".to_owned()),
                Just(";".to_owned()),
                Just("%3b".to_owned()),
                Just("%3B".to_owned()),
                Just(";jsessionid=x".to_owned()),
                Just("\\".to_owned()),
                Just("@".to_owned()),
                Just(":".to_owned()),
                Just("?".to_owned()),
                Just("#".to_owned()),
                Just("%00".to_owned()),
                Just("//evil.test".to_owned()),
                "[a-z0-9]{1,4}",
                "[ -~]{1,3}",
                any::<char>().prop_map(String::from),
            ]
        }

        /// Whether a server that decodes (up to three times) and strips matrix
        /// parameters could read `segment` as `.` or `..`.
        fn reads_as_dot_segment(segment: &str) -> bool {
            let mut current = segment.as_bytes().to_vec();
            for _ in 0..4 {
                let name = current.split(|b| *b == b';').next().unwrap_or_default();
                let name: Vec<u8> = percent_decode(name).collect();
                if name == b"." || name == b".." {
                    return true;
                }
                current = percent_decode(&current).collect();
            }
            false
        }

        fn path() -> impl Strategy<Value = String> {
            proptest::collection::vec(piece(), 0..12).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn the_built_url_never_leaves_the_base(
                base in proptest::sample::select(BASES.to_vec()),
                path in path(),
                query in proptest::option::of("[ -~]{0,12}"),
            ) {
                let base = Url::parse(base).unwrap();
                if let Ok(built) = proxy_target(&base, &path, query.as_deref()) {
                    prop_assert_eq!(built.origin(), base.origin());
                    prop_assert_eq!(built.host_str(), base.host_str());
                    prop_assert_eq!(built.port_or_known_default(), base.port_or_known_default());
                    prop_assert!(built.path().starts_with(base_prefix(&base)));
                    prop_assert!(is_within_base(&base, &built));
                    let reparsed = Url::parse(built.as_str()).unwrap();
                    prop_assert_eq!(&reparsed, &built);
                    prop_assert!(!built.path().split('/').any(|s| s == "." || s == ".."));
                    prop_assert!(!built.path().split('/').any(reads_as_dot_segment));
                }
            }

            #[test]
            fn accepted_paths_are_appended_unchanged(
                segments in proptest::collection::vec("[A-Za-z0-9_~:@!$&'()*+,;=-]{1,8}", 0..6),
            ) {
                let base = Url::parse("https://api.example.com/v1").unwrap();
                let raw: String = segments.iter().map(|s| format!("/{s}")).collect();
                let built = proxy_target(&base, &raw, None).unwrap();
                prop_assert_eq!(built.path(), format!("/v1{raw}"));
            }
        }
    }
}
