//! What the secret canaries test searches with: every form a secret may take in a
//! text, the recorder that keeps each answer of the run (searched, or handed to the
//! secret's owner), and the fake provider's request log.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rand::Rng;
use rand::distributions::Alphanumeric;
use reqwest::Method;
use serde_json::Value;
use tokenwarden_fake_provider::FakeProvider;

use crate::helpers::{Answer, Auth};
use crate::oauth_support::{Server, send};
use crate::processes::Process;
use crate::stolen_search::encodings;

pub fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Every form a secret may take in a text: raw, hex (both cases), base64 in both
/// alphabets with and without padding, the base64 characters that depend only on the
/// secret when it sits at offset 0, 1 or 2 (mod 3) of longer encoded data (a Basic
/// header, a JSON blob), and URL-encoded (`+` or `%20` for a space).
pub fn every_form(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    let names = [
        "raw",
        "hex",
        "HEX",
        "base64",
        "base64 unpadded",
        "base64url",
        "base64url unpadded",
    ];
    let mut forms: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (*n).to_owned())
        .zip(encodings(secret))
        .collect();
    for (alphabet, engine) in [("base64", STANDARD_NO_PAD), ("base64url", URL_SAFE_NO_PAD)] {
        for shift in 0..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(secret);
            let text = engine.encode(&shifted);
            // Characters that mix in a byte before or after the secret are left out.
            let start = (shift * 8).div_ceil(6);
            let end = shifted.len() * 8 / 6;
            forms.push((
                format!("{alphabet} inside, shifted {shift}"),
                text.as_bytes()[start..end].to_vec(),
            ));
        }
    }
    let form_encoded: String = url::form_urlencoded::byte_serialize(secret).collect();
    forms.push(("form-urlencoded".into(), form_encoded.clone().into_bytes()));
    forms.push((
        "percent-encoded".into(),
        form_encoded.replace('+', "%20").into_bytes(),
    ));
    let mut unique: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, bytes) in forms {
        if !unique.iter().any(|(_, b)| *b == bytes) {
            unique.push((name, bytes));
        }
    }
    unique
}

/// A secret of the run and what it is.
#[derive(Debug, Clone)]
pub struct Canary {
    pub what: String,
    pub value: Vec<u8>,
}

/// The answers of the run: those searched, and those that legitimately carry a
/// secret to its owner.
pub struct Recorder<'a> {
    pub server: &'a Process,
    pub searched: Vec<(PathBuf, Vec<u8>)>,
    pub owner: Vec<(PathBuf, Vec<u8>)>,
}

fn answer_bytes(answer: &Answer) -> Vec<u8> {
    let mut text = format!("{}\n", answer.status);
    for (name, value) in &answer.headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push('\n');
    text.push_str(&answer.text);
    text.into_bytes()
}

impl Recorder<'_> {
    pub fn keep(&mut self, label: &str, answer: &Answer, owner: bool) {
        let place = (
            PathBuf::from(format!("answer: {label}")),
            answer_bytes(answer),
        );
        if owner {
            self.owner.push(place);
        } else {
            self.searched.push(place);
        }
    }

    /// A JSON API call, recorded.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
        owner: bool,
    ) -> Answer {
        let answer = send(self.server, method.clone(), path, auth, body).await;
        self.keep(&format!("{method} {path}"), &answer, owner);
        answer
    }

    /// A browser request to an absolute URL, with an optional cookie, recorded.
    pub async fn browse(
        &mut self,
        label: &str,
        method: Method,
        url: &str,
        cookie: Option<&str>,
        owner: bool,
    ) -> Answer {
        let mut request = self.server.http().request(method, url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let answer = Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        };
        self.keep(label, &answer, owner);
        answer
    }
}

/// Every request the fake provider received, as text: what tokenwarden sent it.
pub fn provider_log(provider: &FakeProvider) -> Vec<u8> {
    let mut text = String::new();
    for r in provider.requests() {
        text.push_str(&format!("{} {}\n", r.method, r.path));
        for (k, v) in r.query.iter().chain(&r.headers).chain(&r.form) {
            text.push_str(&format!("{k}: {v}\n"));
        }
    }
    text.into_bytes()
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
