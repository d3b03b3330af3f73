//! The server under test: the release binary as its own process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::{Child, Command};

/// Builds `tokenwarden` (in release mode unless `debug`: CI's smoke run reuses the
/// debug build its tests made) and returns the executable cargo reports.
pub fn build(debug: bool) -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let profile = if debug { "dev" } else { "release" };
    eprintln!("building the server (cargo build --profile {profile} -p tokenwarden) ...");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&workspace)
        .args([
            "build",
            "--profile",
            profile,
            "--locked",
            "-p",
            "tokenwarden",
            "--bin",
            "tokenwarden",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build --profile {profile} failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "tokenwarden")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| anyhow!("cargo reported no tokenwarden executable"))
}

/// A running `tokenwarden serve`; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    /// From spawning the process to the first `200` of `/readyz`.
    pub ready_after: Duration,
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    pub async fn start(binary: &Path, database_url: &str, log: &Path) -> Result<Self> {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let log_file = std::fs::File::create(log)?;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(0)
            .build()?;
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .env("TOKENWARDEN_LISTEN", format!("127.0.0.1:{port}"))
            .env("TOKENWARDEN_DATABASE_URL", database_url)
            .env("TOKENWARDEN_ALLOW_LOOPBACK_PROVIDERS", "true")
            .env("TOKENWARDEN_SIGNUP", "open")
            .env("TOKENWARDEN_LOG", "warn")
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server exited at once"))?;
        let mut server = Self {
            child,
            pid,
            base_url,
            ready_after: Duration::ZERO,
        };
        let readyz = format!("{}/readyz", server.base_url);
        loop {
            if let Ok(r) = probe.get(&readyz).send().await
                && r.status().is_success()
            {
                server.ready_after = started.elapsed();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was ready; see {}",
                    log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the server was not ready within 60 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Resident set size now and its peak so far, in KiB (`/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Result<Rss> {
        rss_of(self.pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    pub now_kib: u64,
    pub peak_kib: u64,
}

pub fn rss_of(pid: u32) -> Result<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Rss {
        now_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    })
}
