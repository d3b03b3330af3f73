//! Fixed values the token endpoint tests share: the clock, the client, the redirect
//! URI, the PKCE verifier and a retry policy that does not wait.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use secrecy::SecretString;
use tokenwarden_oauth::{ClientCredentials, RetryPolicy};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const REDIRECT: &str = "https://vault.example/v1/oauth/callback/app_1";

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

pub fn credentials() -> ClientCredentials {
    ClientCredentials {
        client_id: "client:1".into(),
        client_secret: SecretString::from("se cret"),
    }
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(1),
    }
}
