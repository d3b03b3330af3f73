//! An endpoint URL, checked when it is registered or changed: the outbound policy's URL
//! rules (`tokenwarden_oauth::HttpPolicy::check_url`) plus what only a webhook needs.
//! Host names are checked again, against their resolved addresses, at every delivery.

use tokenwarden_oauth::{HttpPolicy, PolicyError};
use url::{Host, Url};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL cannot be a webhook endpoint. The messages never quote the URL, whose path
/// or query may hold the receiver's own secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the webhook URL is not an absolute URL")]
    Invalid,
    #[error("the webhook URL is longer than 2048 characters")]
    TooLong,
    #[error("the webhook URL must use https")]
    Scheme,
    #[error("the webhook URL has no host")]
    NoHost,
    #[error("the webhook URL must not contain a user name or password")]
    Credentials,
    #[error("the webhook URL must not contain a fragment")]
    Fragment,
    #[error("the webhook URL's host is not a public address")]
    BlockedAddress,
}

/// Parses and checks an endpoint URL: absolute `https` (or `http` when `allow_loopback`,
/// the `TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS` setting), no user info, no fragment, and
/// no loopback, private or otherwise non-global IP literal or `localhost` name unless
/// `allow_loopback`.
pub fn validate_url(text: &str, allow_loopback: bool) -> Result<Url, UrlError> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(text).map_err(|_| UrlError::Invalid)?;
    let policy = HttpPolicy {
        allow_loopback,
        ..HttpPolicy::default()
    };
    policy.check_url(&url).map_err(|err| match err {
        PolicyError::Scheme(_) => UrlError::Scheme,
        PolicyError::NoHost => UrlError::NoHost,
        PolicyError::Credentials => UrlError::Credentials,
        PolicyError::BlockedAddress(_) => UrlError::BlockedAddress,
    })?;
    if url.fragment().is_some() {
        return Err(UrlError::Fragment);
    }
    // The resolver would refuse these at delivery anyway; saying so at registration is
    // kinder (RFC 6761 §6.3: `localhost` names are loopback).
    if !allow_loopback && let Some(Host::Domain(name)) = url.host() {
        let name = name.trim_end_matches('.');
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(UrlError::BlockedAddress);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_https_urls_are_accepted_as_given() {
        for text in [
            "https://hooks.example.com/tokenwarden",
            "https://hooks.example.com:8443/a/b?c=d",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
        ] {
            assert_eq!(validate_url(text, false).unwrap().as_str(), text);
        }
    }

    #[test]
    fn strict_validation_refuses_each_bad_url_with_its_reason() {
        let cases = [
            ("/relative/path", UrlError::Invalid),
            ("hooks.example.com/x", UrlError::Invalid),
            ("", UrlError::Invalid),
            ("http://hooks.example.com/x", UrlError::Scheme),
            ("ftp://hooks.example.com/x", UrlError::Scheme),
            ("file:///etc/passwd", UrlError::Scheme),
            ("https://user:pw@hooks.example.com/", UrlError::Credentials),
            ("https://user@hooks.example.com/", UrlError::Credentials),
            ("https://hooks.example.com/x#frag", UrlError::Fragment),
            ("https://127.0.0.1/x", UrlError::BlockedAddress),
            ("https://10.1.2.3/x", UrlError::BlockedAddress),
            ("https://192.168.0.10/x", UrlError::BlockedAddress),
            ("https://169.254.169.254/latest", UrlError::BlockedAddress),
            ("https://[::1]/x", UrlError::BlockedAddress),
            ("https://[fd00:ec2::254]/x", UrlError::BlockedAddress),
            ("https://0x7f.1/x", UrlError::BlockedAddress),
            ("https://localhost/x", UrlError::BlockedAddress),
            ("https://api.localhost./x", UrlError::BlockedAddress),
        ];
        for (text, expected) in cases {
            assert_eq!(validate_url(text, false), Err(expected), "{text}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(validate_url(&long, false), Err(UrlError::TooLong));
    }

    #[test]
    fn loopback_mode_accepts_http_and_private_hosts_but_not_other_schemes() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/hook",
            "https://10.0.0.5/hook",
        ] {
            assert!(validate_url(text, true).is_ok(), "{text}");
        }
        assert_eq!(
            validate_url("ftp://127.0.0.1/x", true),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            validate_url("http://u:p@127.0.0.1/x", true),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            validate_url("http://127.0.0.1/x#f", true),
            Err(UrlError::Fragment)
        );
    }

    #[test]
    fn errors_do_not_quote_the_url() {
        let err = validate_url("https://127.0.0.1/hook?token=s3cr3t", false).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
        assert!(!err.to_string().contains("127.0.0.1"));
    }
}
