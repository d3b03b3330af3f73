//! The API calls that set a server up: an account, a vault, keys, an app, imports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{StreamExt, stream};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple bench";

#[derive(Debug, Clone)]
pub struct Api {
    pub http: Client,
    pub base_url: String,
}

/// A vault ready for reads: its admin key, a `connect` key and a `read` key.
#[derive(Debug, Clone)]
pub struct Vault {
    pub admin_key: String,
    pub connect_key: String,
    pub read_key: String,
}

impl Api {
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(Self {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()?,
            base_url: base_url.to_owned(),
        })
    }

    /// Sends a request and returns the status and the body as JSON (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        want: StatusCode,
    ) -> Result<Value> {
        let (status, value) = self.call(method.clone(), path, bearer, body).await?;
        if status != want {
            bail!("{method} {path}: {status} (wanted {want}): {value}");
        }
        Ok(value)
    }

    pub async fn key(&self, admin_key: &str, role: &str) -> Result<String> {
        let body = self
            .expect(
                Method::POST,
                "/v1/api-keys",
                Some(admin_key),
                Some(&json!({"name": format!("bench-{role}"), "roles": [role]})),
                StatusCode::CREATED,
            )
            .await?;
        key_of(&body["key"])
    }

    /// An account, a vault with an app `gh` (the built-in GitHub provider) and keys.
    pub async fn vault(&self) -> Result<Vault> {
        self.expect(
            Method::POST,
            "/v1/accounts",
            None,
            Some(&json!({"email": EMAIL, "password": PASSWORD})),
            StatusCode::CREATED,
        )
        .await?;
        let vault = self
            .http
            .post(format!("{}/v1/vaults", self.base_url))
            .basic_auth(EMAIL, Some(PASSWORD))
            .json(&json!({"name": "bench"}))
            .send()
            .await?;
        if vault.status() != StatusCode::CREATED {
            bail!("POST /v1/vaults: {}", vault.status());
        }
        let vault: Value = vault.json().await?;
        let admin_key = key_of(&vault["api_key"]["key"])?;
        self.expect(
            Method::POST,
            "/v1/apps",
            Some(&admin_key),
            Some(&json!({
                "key": "gh",
                "provider": "github",
                "client_id": "bench-client",
                "client_secret": "bench-client-secret",
                "scopes": ["repo"],
            })),
            StatusCode::CREATED,
        )
        .await?;
        Ok(Vault {
            connect_key: self.key(&admin_key, "connect").await?,
            read_key: self.key(&admin_key, "read").await?,
            admin_key,
        })
    }

    /// Imports connections `c{from}` .. `c{to - 1}` through `POST /v1/connections`,
    /// `concurrency` at a time; prints progress for big imports. Returns the time taken.
    pub async fn import(
        &self,
        vault: &Vault,
        from: u64,
        to: u64,
        concurrency: usize,
    ) -> Result<Duration> {
        let started = Instant::now();
        let done = Arc::new(AtomicU64::new(0));
        let expires_at = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339();
        let total = to.saturating_sub(from);
        let results = stream::iter(from..to)
            .map(|i| {
                let done = done.clone();
                let expires_at = expires_at.clone();
                async move {
                    let body = json!({
                        "app": "gh",
                        "connection_id": format!("c{i}"),
                        "access_token": format!("gho_bench{i:012}abcdefghijklmnopqrstuvwx"),
                        "refresh_token": format!("ghr_bench{i:012}abcdefghijklmnopqrstuvwx"),
                        "expires_at": expires_at,
                    });
                    let result = self
                        .expect(
                            Method::POST,
                            "/v1/connections",
                            Some(&vault.connect_key),
                            Some(&body),
                            StatusCode::CREATED,
                        )
                        .await;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if total >= 50_000 && n.is_multiple_of(50_000) {
                        let secs = started.elapsed().as_secs_f64();
                        eprintln!(
                            "  imported {n} / {total} ({:.0}/s)",
                            n as f64 / secs.max(1e-9)
                        );
                    }
                    result.map(drop)
                }
            })
            .buffer_unordered(concurrency.max(1));
        let failures = results
            .filter_map(|r| async move { r.err() })
            .take(1)
            .collect::<Vec<_>>()
            .await;
        if let Some(e) = failures.into_iter().next() {
            return Err(e.context("import failed"));
        }
        Ok(started.elapsed())
    }
}

fn key_of(v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no key in the answer"))
        .context("creating a key")
}
