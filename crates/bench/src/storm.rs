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

/// Every storm of one run, each beside the same number of reads that need no refresh.
#[derive(Debug, Clone)]
pub struct Storm {
    pub readers: usize,
    pub provider_latency: Duration,
    pub rounds: Vec<StormRound>,
}

#[derive(Debug, Clone)]
pub struct StormRound {
    pub provider_refreshes: u64,
    /// From the first request sent to the last answer received.
    pub total: Duration,
    /// The same number of concurrent reads of a connection that needs no refresh, on
    /// the same warm connections, just before: what the storm would cost without any
    /// refresh.
    pub plain_reads: Duration,
    pub ok: usize,
    pub distinct_tokens: usize,
}

impl StormRound {
    /// The storm's time beyond the provider's latency.
    pub fn over(&self, latency: Duration) -> Duration {
        self.total.saturating_sub(latency)
    }
}

impl Storm {
    /// The median round by time beyond the provider's latency.
    pub fn median(&self) -> Option<&StormRound> {
        let mut sorted: Vec<&StormRound> = self.rounds.iter().collect();
        sorted.sort_by_key(|r| r.over(self.provider_latency));
        sorted.get(sorted.len() / 2).copied()
    }

    /// The median of the no-refresh comparisons.
    pub fn median_plain_reads(&self) -> Option<Duration> {
        let mut plain: Vec<Duration> = self.rounds.iter().map(|r| r.plain_reads).collect();
        plain.sort();
        plain.get(plain.len() / 2).copied()
    }
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

/// `rounds` storms, each on a connection of its own and each just after the same
/// number of reads of a connection that needs no refresh (A B A B).
pub async fn run(
    api: &Api,
    vault: &Vault,
    readers: usize,
    latency: Duration,
    rounds: usize,
) -> Result<Storm> {
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

    // Connected through the whole flow with a fresh token: the no-refresh comparison.
    connect(api, vault, "calm").await?;

    let client = warm_client(&api.base_url, readers).await?;
    // The first read of a connection made by the callback re-encrypts its sealed token
    // set; do that for `calm` before measuring.
    let calm = format!("{}/v1/connections/calm/token", api.base_url);
    read_all(&client, &calm, &vault.read_key, 1).await?;

    let mut storm = Storm {
        readers,
        provider_latency: latency,
        rounds: Vec::with_capacity(rounds),
    };
    for round in 1..=rounds {
        // A connection of its own for each storm, its access token expiring in 30 s:
        // inside the 60 s refresh skew, so the next read refreshes it.
        let id = format!("storm{round}");
        provider.set_token_latency(Duration::ZERO);
        provider.set_quirks(Quirks {
            expires_in_override: Some(30),
            ..Quirks::default()
        });
        connect(api, vault, &id).await?;
        provider.set_quirks(Quirks::default());

        let (plain_reads, _) = read_all(&client, &calm, &vault.read_key, readers).await?;
        provider.set_token_latency(latency);
        provider.reset_counters();
        let (total, answers) = read_all(
            &client,
            &format!("{}/v1/connections/{id}/token", api.base_url),
            &vault.read_key,
            readers,
        )
        .await?;
        let distinct: HashSet<String> = answers
            .iter()
            .filter_map(|a| a["access_token"].as_str().map(str::to_owned))
            .collect();
        let r = StormRound {
            provider_refreshes: provider.refresh_calls(),
            total,
            plain_reads,
            ok: answers.len(),
            distinct_tokens: distinct.len(),
        };
        eprintln!(
            "  storm {round}: provider calls {}, total - latency {:>6.1} ms; the same reads, no refresh due {:>6.1} ms",
            r.provider_refreshes,
            r.over(latency).as_secs_f64() * 1e3,
            r.plain_reads.as_secs_f64() * 1e3
        );
        storm.rounds.push(r);
    }
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
