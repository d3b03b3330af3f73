//! SSRF through the API proxy: the table runs against a server that refuses non-global
//! addresses, with an injected resolver, and proves that nothing is dialled.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use tokenwarden_service::{HostResolver, Lookup, ProxySettings};
use tokenwarden_testing::{SpawnOptions, TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::oauth_support::role_key;
use crate::proxy_support::{custom_connection, problem_code, read};

/// Answers names from a table the test changes, and records every lookup: a name that
/// was looked up but refused proves that the policy, not a failed dial, stopped it.
#[derive(Debug, Default)]
struct TableResolver {
    answers: Mutex<HashMap<String, Vec<IpAddr>>>,
    asked: Mutex<Vec<String>>,
}

impl HostResolver for TableResolver {
    fn lookup(&self, host: &str) -> Lookup {
        self.asked.lock().unwrap().push(host.to_owned());
        let answer = self.answers.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
        })
    }
}

impl TableResolver {
    fn set(&self, host: &str, addrs: &[&str]) {
        self.answers.lock().unwrap().insert(
            host.to_owned(),
            addrs.iter().map(|a| a.parse().unwrap()).collect(),
        );
    }

    fn take_asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

/// A request line sent as it is, so that the client cannot normalise the path first.
async fn raw_get(app: &TestApp, target: &str, key: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

enum Vector {
    /// The API host resolves to these addresses.
    Resolves(&'static [&'static str]),
    /// A custom provider with this API base URL (and the same URL named in
    /// `X-Tokenwarden-Base-Url` on an existing connection).
    BaseUrl(&'static str),
    /// This raw path after `/v1/proxy/victim`.
    Path(&'static str),
}

const API_HOST: &str = "api.ssrf.test";

#[tokio::test]
async fn ssrf_vectors_are_refused_before_any_connection_is_made() {
    use Vector::*;
    let resolver = Arc::new(TableResolver::default());
    let app = spawn_app_with(SpawnOptions {
        strict_outbound: true,
        proxy: Some(ProxySettings {
            resolver: Some(resolver.clone()),
            ..ProxySettings::default()
        }),
        ..SpawnOptions::default()
    })
    .await;
    let vault = app.vault("mallory@example.com").await;
    let connect_key = role_key(&app, &vault.admin_key, "connect").await;
    let proxy_key = role_key(&app, &vault.admin_key, "proxy").await;
    let imported = custom_connection(
        &app,
        &vault.admin_key,
        &connect_key,
        "ssrf",
        Some(&format!("https://{API_HOST}/v1")),
        "victim",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    resolver.take_asked();

    let table: Vec<(&str, Vector)> = vec![
        ("loopback", Resolves(&["127.0.0.1"])),
        ("loopback elsewhere in 127/8", Resolves(&["127.53.0.9"])),
        ("IPv6 loopback", Resolves(&["::1"])),
        ("IPv4-mapped loopback", Resolves(&["::ffff:127.0.0.1"])),
        (
            "IPv4-mapped metadata",
            Resolves(&["::ffff:169.254.169.254"]),
        ),
        ("IPv4-compatible loopback", Resolves(&["::127.0.0.1"])),
        ("NAT64 of loopback", Resolves(&["64:ff9b::7f00:1"])),
        ("IPv6 unspecified", Resolves(&["::"])),
        ("IPv4 unspecified", Resolves(&["0.0.0.0"])),
        ("unique local fc00::/7", Resolves(&["fc00::1"])),
        ("AWS IPv6 metadata", Resolves(&["fd00:ec2::254"])),
        ("link-local fe80::/10", Resolves(&["fe80::1"])),
        ("private 10/8", Resolves(&["10.0.0.1"])),
        ("private 172.16/12", Resolves(&["172.16.5.4"])),
        ("private 192.168/16", Resolves(&["192.168.1.1"])),
        ("CGNAT 100.64/10", Resolves(&["100.64.0.1"])),
        ("cloud metadata", Resolves(&["169.254.169.254"])),
        ("multicast", Resolves(&["224.0.0.1"])),
        ("broadcast", Resolves(&["255.255.255.255"])),
        ("documentation", Resolves(&["192.0.2.10"])),
        (
            "public and private mixed",
            Resolves(&["8.8.8.8", "10.0.0.1"]),
        ),
        ("decimal loopback", BaseUrl("https://2130706433/")),
        ("hex loopback", BaseUrl("https://0x7f000001/")),
        ("octal loopback", BaseUrl("https://0177.0.0.1/")),
        ("short loopback", BaseUrl("https://127.1/")),
        ("bracketed IPv6 loopback", BaseUrl("https://[::1]/")),
        (
            "bracketed mapped loopback",
            BaseUrl("https://[::ffff:127.0.0.1]/"),
        ),
        (
            "bracketed mapped metadata",
            BaseUrl("https://[::ffff:169.254.169.254]/"),
        ),
        (
            "literal metadata",
            BaseUrl("https://169.254.169.254/latest/"),
        ),
        ("literal unspecified", BaseUrl("https://0.0.0.0/")),
        ("plain http", BaseUrl("http://api.example.com/")),
        ("dot-dot", Path("/../../admin")),
        ("dot", Path("/./x")),
        ("encoded dot-dot", Path("/%2e%2e/admin")),
        ("encoded dot-dot upper case", Path("/%2E%2E/admin")),
        ("half-encoded dot-dot", Path("/.%2e/admin")),
        ("double-encoded dot-dot", Path("/%252e%252e/admin")),
        ("encoded slash", Path("/x%2f..%2fadmin")),
        ("encoded backslash", Path("/..%5cadmin")),
        ("backslash", Path("/..\\admin")),
        ("double slash", Path("//evil.test/x")),
        ("encoded NUL", Path("/x%00")),
        ("encoded CRLF", Path("/x%0d%0aHost:evil.test")),
    ];
    assert!(table.len() >= 25);

    for (name, vector) in &table {
        match vector {
            Resolves(addrs) => {
                resolver.set(API_HOST, addrs);
                let (status, text) = raw_get(&app, "/v1/proxy/victim/users", &proxy_key).await;
                assert_eq!(status, 403, "{name}: {text}");
                assert!(
                    text.contains("\"code\":\"upstream_blocked\""),
                    "{name}: {text}"
                );
                // Looked up and refused: a dial to these (unreachable) addresses would
                // have answered 502 or 504 instead.
                assert_eq!(resolver.take_asked(), [API_HOST], "{name}");
            }
            BaseUrl(url) => {
                let key = format!("lit{}", table.iter().position(|(n, _)| n == name).unwrap());
                let created =
                    custom_connection(&app, &vault.admin_key, &connect_key, &key, Some(url), &key)
                        .await;
                assert_eq!(
                    created.status,
                    StatusCode::BAD_REQUEST,
                    "{name}: {}",
                    created.text
                );
                assert_eq!(problem_code(&created), "invalid_request", "{name}");
                let named = read(
                    app.client
                        .get(app.url("/v1/proxy/victim/users"))
                        .bearer_auth(&proxy_key)
                        .header("x-tokenwarden-base-url", *url)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(named.status, StatusCode::BAD_REQUEST, "{name}");
                assert_eq!(problem_code(&named), "invalid_request", "{name}");
                assert!(resolver.take_asked().is_empty(), "{name}");
            }
            Path(path) => {
                resolver.set(API_HOST, &["127.0.0.1"]);
                let (status, text) =
                    raw_get(&app, &format!("/v1/proxy/victim{path}"), &proxy_key).await;
                assert_eq!(status, 400, "{name}: {text}");
                // hyper refuses a few of these itself, before any handler runs.
                if text.contains("problem+json") {
                    assert!(
                        text.contains("\"code\":\"invalid_request\""),
                        "{name}: {text}"
                    );
                }
                assert!(
                    resolver.take_asked().is_empty(),
                    "{name}: the host was looked up"
                );
            }
        }
    }
}
