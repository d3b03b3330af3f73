//! The API proxy's outbound rules: where a proxied request may go and which headers
//! cross in each direction. Pure functions over URLs and header maps, so that the rule
//! "a proxied request never leaves the provider's API base" can be tested and fuzzed
//! without a network.
//!
//! The path is checked as the caller sent it (still percent-encoded): a proxy that
//! decoded first and checked afterwards would let `%2e%2e` or `%2f` through to an
//! upstream that decodes again. Anything that could be read as a dot segment or an
//! extra separator, at any level of decoding, is refused rather than normalised.
//!
//! This file builds the upstream URL; the path rules are in `proxy_path` and the header
//! filters in `proxy_headers`, both re-exported here.

use url::Url;

pub use crate::proxy_headers::{forward_request_headers, forward_response_headers};
pub use crate::proxy_path::{MAX_PATH_LEN, ProxyPathError, check_proxy_path};

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

#[cfg(test)]
mod tests {
    use super::*;

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

    mod property {
        use super::super::*;
        use percent_encoding::percent_decode;
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
