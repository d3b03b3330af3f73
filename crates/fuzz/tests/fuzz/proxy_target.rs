//! `proxy_target` (crates/oauth/src/proxy.rs): the upstream URL built from the raw path
//! and query a proxy caller sends. Whatever they are, the URL keeps the API base's
//! scheme, host and port, and its path stays under the base path.

use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use tokenwarden_oauth::proxy::{check_proxy_path, proxy_target};
use url::Url;

use crate::harness::{Outcome, Target, TestCaseError, ensure};

/// API bases as catalog entries write them: with and without a path, a trailing slash,
/// a port, an IPv6 literal, an IDN host.
const BASES: [&str; 8] = [
    "https://api.github.com",
    "https://gitlab.com/api/v4",
    "https://www.googleapis.com/",
    "https://graph.microsoft.com/v1.0/",
    "http://127.0.0.1:8080/api/",
    "https://[2001:db8::1]:8443/x/y",
    "https://bücher.example/a%20b/c",
    "https://acme.example:443/v1",
];

/// Pieces an attacker combines: separators, dots and their escapes at any depth of
/// re-encoding, authority and scheme look-alikes, unicode, control characters.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "/", "/", "/", ".", "..", "%2e", "%2E", "%2e%2e", ".%2e", "%2f", "%2F", "%5c", "%5C",
            "%252e", "%252f", "%25252e", "%25", "%", "\\", "//", "//evil.test", "@", "@evil.test",
            ":", ":443", "https:", "http://evil.test", "?", "#", ";", "%00", "%0d%0a", "\t", "\0",
            "%c0%ae", "%e2%80%ae", "．", "。", "﹒", "%ef%bc%8e", "ä", "\u{202e}", "🔑", "~", "+",
            "%3f", "%23", "%40", "%3a", "[", "]", "v1",
        ])
        .prop_map(str::to_owned),
        2 => "[a-z0-9]{1,6}",
        1 => "[ -~]{1,3}",
        1 => any::<char>().prop_map(String::from),
    ]
}

fn raw_target() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(piece(), 0..14),
        prop::option::of(prop_oneof![
            "[ -~]{0,16}",
            ".{0,8}",
            Just("a=1&a=2#x".to_owned())
        ]),
    )
        .prop_map(|(path, query)| {
            let mut s = path.concat();
            if let Some(q) = query {
                s.push('?');
                s.push_str(&q);
            }
            s.into_bytes()
        })
}

fn base_prefix(base: &Url) -> &str {
    base.path().trim_end_matches('/')
}

/// A corpus entry is the request target after `/v1/proxy/{connection_id}`: the path,
/// then `?` and the query when there is one (a `?` cannot be part of an accepted path).
fn check(bases: &[Url], input: &[u8]) -> Outcome {
    // The request line is text; `raw_path` reaches the builder as a `&str`.
    let text = String::from_utf8_lossy(input);
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*text, None),
    };
    let path_ok = check_proxy_path(path).is_ok();
    for base in bases {
        let built = proxy_target(base, path, query);
        let Ok(url) = built else {
            continue;
        };
        ensure(path_ok, || "a URL was built from a refused path".into())?;
        ensure(url.scheme() == base.scheme(), || {
            format!("scheme changed: {url}")
        })?;
        ensure(url.host() == base.host(), || format!("host changed: {url}"))?;
        ensure(
            url.port_or_known_default() == base.port_or_known_default(),
            || format!("port changed: {url}"),
        )?;
        ensure(
            url.username() == base.username() && url.password() == base.password(),
            || format!("userinfo changed: {url}"),
        )?;
        ensure(url.origin() == base.origin(), || {
            format!("origin changed: {url}")
        })?;
        let prefix = base_prefix(base);
        let p = url.path();
        ensure(
            p == prefix
                || p.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/')),
            || format!("left the base path {prefix:?}: {url}"),
        )?;
        // The path is sent as the caller wrote it: appended, not normalised.
        let sent = format!("{prefix}{path}");
        let expected = if sent.is_empty() { "/" } else { sent.as_str() };
        ensure(p == expected, || format!("path rewritten: {url}"))?;
        ensure(url.fragment().is_none(), || format!("a fragment: {url}"))?;
        // The query arrives as the caller sent it, up to the percent-encoding the URL
        // Standard applies to the few characters it never leaves literal.
        let decoded = |q: Option<&str>| q.map(|q| percent_decode_str(q).collect::<Vec<u8>>());
        ensure(decoded(url.query()) == decoded(query), || {
            format!("query changed: {url}")
        })?;
        ensure(
            url.query()
                .is_none_or(|q| q.bytes().all(|b| b.is_ascii_graphic() && b != b'#')),
            || format!("a query byte left literal that should not be: {url}"),
        )?;
        ensure(
            !p.split('/').any(|s| {
                let d = percent_decode_all(s);
                d == "." || d == ".."
            }),
            || format!("a dot segment survived: {url}"),
        )?;
        // What goes on the wire parses back to the same URL, so an upstream reading
        // the serialised form sees the same origin.
        let reparsed = Url::parse(url.as_str())
            .map_err(|e| TestCaseError::fail(format!("the built URL does not parse: {e}")))?;
        ensure(reparsed == url, || format!("{url} reparses as {reparsed}"))?;
    }
    Ok(())
}

/// Percent-decodes until nothing changes (what a chain of decoding upstreams sees).
fn percent_decode_all(s: &str) -> String {
    let mut current = s.to_owned();
    for _ in 0..8 {
        let next =
            url::form_urlencoded::parse(format!("x={}", current.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

#[test]
fn proxy_urls_never_leave_the_api_base() {
    let bases: Vec<Url> = BASES.iter().map(|b| Url::parse(b).unwrap()).collect();
    Target::new(
        "proxy_target",
        &[
            b"/",
            b"..",
            b"%2e",
            b"%2f",
            b"%5c",
            b"%25",
            b"\\",
            b"//",
            b"@",
            b":",
            b"?",
            b"#",
            b"%00",
            b"\xef\xbc\x8e",
            b"\t",
        ],
    )
    .default_cases(4000)
    .run(raw_target(), |input| check(&bases, input));
}
