//! `pgbench -S` (one primary-key SELECT per transaction) on the same PostgreSQL server:
//! the ceiling a token read that needs a database round trip can be held against.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokenwarden_testing::TestDatabase;
use tokio::process::Command;

/// A scratch pgbench database beside the one a URL names (dropped with it).
#[derive(Debug)]
pub struct PgBench {
    db: TestDatabase,
}

impl PgBench {
    pub async fn init(url: &str, scale: u32) -> Result<Self> {
        let db = TestDatabase::create(url).await;
        let init = Command::new("pgbench")
            .args(["-i", "-q", "-s", &scale.to_string(), db.url()])
            .output()
            .await
            .context("pgbench is not installed (Debian: postgresql-client)")?;
        if !init.status.success() {
            bail!(
                "pgbench -i failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        Ok(Self { db })
    }

    /// One run of `pgbench -S`; its transactions per second (without connection set-up).
    pub async fn select_only(&self, clients: u32, threads: u32, duration: Duration) -> Result<f64> {
        let run = Command::new("pgbench")
            .args([
                "-S",
                "-n",
                "-c",
                &clients.to_string(),
                "-j",
                &threads.to_string(),
                "-T",
                &duration.as_secs().max(1).to_string(),
                self.db.url(),
            ])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&run.stdout);
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("tps = "))
            .find_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("pgbench printed no tps: {text}"))
    }
}
