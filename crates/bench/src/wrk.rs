//! wrk as the load generator: one round is one wrk run; a Lua script picks a random
//! connection per request and prints the figures as one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::Command;

const SCRIPT: &str = r#"
-- Written by tokenwarden-bench. TW_BENCH_MODE=token: GET a random connection's token
-- (ids c0 .. c<N-1>) with the read key; otherwise GET the URL as given.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", os.time() * 100 + counter)
end

local mode, n, key, prefix
function init(args)
  math.randomseed(seed)
  mode = os.getenv("TW_BENCH_MODE")
  n = tonumber(os.getenv("TW_BENCH_N") or "1")
  key = os.getenv("TW_BENCH_KEY") or ""
  prefix = os.getenv("TW_BENCH_PREFIX") or "c"
end

function request()
  if mode == "token" then
    local id = math.random(0, n - 1)
    return wrk.format("GET", "/v1/connections/" .. prefix .. id .. "/token",
      { ["Authorization"] = "Bearer " .. key })
  end
  return wrk.format("GET", wrk.path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TWBENCH %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// What to load.
#[derive(Debug, Clone)]
pub enum Target {
    Healthz,
    /// Random connections `{prefix}0 .. {prefix}{n-1}` with this key.
    Token {
        n: u64,
        key: String,
    },
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Answers that were not 2xx/3xx, and socket errors: any of these spoils the round.
    pub bad: u64,
}

#[derive(Debug)]
pub struct Wrk {
    script: PathBuf,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

impl Wrk {
    pub fn new(dir: &Path, threads: u32, connections: u32, duration: Duration) -> Result<Self> {
        let status = std::process::Command::new("wrk")
            .arg("--version")
            .output()
            .context("wrk is not installed (Debian: apt-get install -y wrk)")?;
        // wrk --version exits 1 but prints its banner.
        if !String::from_utf8_lossy(&status.stdout).contains("wrk") {
            bail!("`wrk --version` did not answer like wrk");
        }
        let script = dir.join("tokenwarden-bench.lua");
        std::fs::write(&script, SCRIPT)?;
        Ok(Self {
            script,
            threads,
            connections,
            duration,
        })
    }

    pub async fn run(&self, base_url: &str, target: &Target) -> Result<Round> {
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("--timeout")
            .arg("10s")
            .arg("-s")
            .arg(&self.script)
            .kill_on_drop(true);
        match target {
            Target::Healthz => {
                cmd.env("TW_BENCH_MODE", "healthz")
                    .arg(format!("{base_url}/healthz"));
            }
            Target::Token { n, key } => {
                cmd.env("TW_BENCH_MODE", "token")
                    .env("TW_BENCH_N", n.to_string())
                    .env("TW_BENCH_KEY", key)
                    .arg(base_url);
            }
        }
        let out = cmd.output().await.context("running wrk")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("TWBENCH "))
            .ok_or_else(|| anyhow!("wrk printed no figures: {text}"))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [
            requests,
            duration_us,
            status_errors,
            socket_errors,
            p50_us,
            p99_us,
        ] = v[..]
        else {
            bail!("unexpected wrk figures: {line}");
        };
        Ok(Round {
            requests,
            rps: requests as f64 / (duration_us.max(1) as f64 / 1e6),
            p50_us,
            p99_us,
            bad: status_errors + socket_errors,
        })
    }
}

/// The median round by throughput (and its latencies), plus the worst error count.
pub fn median(rounds: &[Round]) -> Option<Round> {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = *sorted.get(sorted.len() / 2)?;
    Some(Round {
        bad: rounds.iter().map(|r| r.bad).sum(),
        ..mid
    })
}
