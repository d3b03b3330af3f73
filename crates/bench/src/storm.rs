//! The refresh storm: many concurrent reads of one connection whose token expires
//! within the refresh skew, against a fake provider answering its token endpoint after
//! a set latency. Good: one provider call, and the storm takes little more than it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use futures_util::future::join_all;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{ClientRegistration, FakeProvider, FakeProviderConfig, Quirks};

use crate::api::{Api, Vault};

const CLIENT_ID: &str = "bench-fake-client";
const CLIENT_SECRET: &str = "bench-fake-client-secret";

#[derive(Debug, Clone)]
pub struct Storm {
    pub readers: usize,
    pub provider_latency: Duration,
    pub provider_refreshes: u64,
    /// From the first request sent to the last answer received.
    pub total: Duration,
    /// The same number of concurrent reads of a connection that needs no refresh, on
    /// the same warm connections: what the storm would cost without any refresh.
    pub plain_reads: Duration,
    pub ok: usize,
    pub distinct_tokens: usize,
}

/// A client whose pool holds `n` open connections to the server, so the storm measures
/// the server, not TCP handshakes.
async fn warm_client(base_url: &str, n: usize) -> Result<Client> {
    let client = Client::builder()
        .pool_max_idle_per_host(n)
        .timeout(Duration::from_secs(120))
        .build()?;
    let url = format!("{base_url}/healthz");
    let answers = join_all((0..n).map(|_| client.get(&url).send())).await;
    for a in answers {
        a?.error_for_status()?;
    }
    Ok(client)
}

async fn read_all(
    client: &Client,
    url: &str,
    key: &str,
    n: usize,
) -> Result<(Duration, Vec<Value>)> {
    let started = Instant::now();
    let answers = join_all((0..n).map(|_| async {
        let r = client.get(url).bearer_auth(key).send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if status != StatusCode::OK {
            bail!("token read answered {status}: {body}");
        }
        Ok(body)
    }))
    .await;
    let elapsed = started.elapsed();
    Ok((elapsed, answers.into_iter().collect::<Result<Vec<_>>>()?))
}

pub async fn run(api: &Api, vault: &Vault, readers: usize, latency: Duration) -> Result<Storm> {
    let provider = FakeProvider::start(FakeProviderConfig::with_client(ClientRegistration::new(
        CLIENT_ID,
        CLIENT_SECRET,
    )))
    .await?;
    api.expect(
        Method::POST,
        "/v1/providers",
        Some(&vault.admin_key),
        Some(&json!({"key": "fake", "issuer": provider.issuer()})),
        StatusCode::CREATED,
    )
    .await?;
    api.expect(
        Method::POST,
        "/v1/apps",
        Some(&vault.admin_key),
        Some(&json!({
            "key": "fake",
            "provider": "fake",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["profile"],
        })),
        StatusCode::CREATED,
    )
    .await?;

    // A whole connect flow whose access token expires in 30 s: inside the 60 s skew, so
    // the next read refreshes it. A second connection is connected fresh, for the
    // no-refresh comparison.
    provider.set_quirks(Quirks {
        expires_in_override: Some(30),
        ..Quirks::default()
    });
    connect(api, vault, "storm").await?;
    provider.set_quirks(Quirks::default());
    connect(api, vault, "calm").await?;

    let client = warm_client(&api.base_url, readers).await?;
    // The first read of a connection made by the callback re-encrypts its sealed token
    // set; do that for `calm` before measuring.
    read_all(
        &client,
        &format!("{}/v1/connections/calm/token", api.base_url),
        &vault.read_key,
        1,
    )
    .await?;
    let (plain_reads, _) = read_all(
        &client,
        &format!("{}/v1/connections/calm/token", api.base_url),
        &vault.read_key,
        readers,
    )
    .await?;

    provider.set_token_latency(latency);
    provider.reset_counters();
    let (total, answers) = read_all(
        &client,
        &format!("{}/v1/connections/storm/token", api.base_url),
        &vault.read_key,
        readers,
    )
    .await?;
    let distinct: HashSet<String> = answers
        .iter()
        .filter_map(|a| a["access_token"].as_str().map(str::to_owned))
        .collect();
    let storm = Storm {
        readers,
        provider_latency: latency,
        provider_refreshes: provider.refresh_calls(),
        total,
        plain_reads,
        ok: answers.len(),
        distinct_tokens: distinct.len(),
    };
    provider.shutdown().await;
    Ok(storm)
}

async fn connect(api: &Api, vault: &Vault, connection_id: &str) -> Result<()> {
    let session = api
        .expect(
            Method::POST,
            "/v1/connect-sessions",
            Some(&vault.connect_key),
            Some(&json!({"app": "fake", "connection_id": connection_id})),
            StatusCode::CREATED,
        )
        .await?;
    let authorize = session["authorization_url"]
        .as_str()
        .ok_or_else(|| anyhow!("no authorization_url"))?;
    // The fake provider approves at once and redirects to the callback.
    let redirect = api.http.get(authorize).send().await?;
    let callback = redirect
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| anyhow!("the provider did not redirect ({})", redirect.status()))?
        .to_owned();
    let page = api.http.get(&callback).send().await?;
    if page.status() != StatusCode::OK {
        bail!("the callback answered {}", page.status());
    }
    Ok(())
}
