//! Command-line options.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tokenwarden-bench",
    about = "Token-read benchmark of tokenwarden: /healthz vs the token call side by side (wrk), \
             scale, refresh storm, RSS and start-up time"
)]
pub struct Args {
    /// Connections imported through the API before the main rounds.
    #[arg(long, default_value_t = 10_000)]
    pub connections: u64,
    /// Also measure the read at this many connections (a second server on its own
    /// database, imported through the API, measured A B A B against the first). 0: skip.
    #[arg(long, default_value_t = 0)]
    pub large: u64,
    /// Rounds of each measurement (A B A B ...); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds per wrk round.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// wrk's open connections.
    #[arg(long, default_value_t = 64)]
    pub wrk_connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    pub wrk_threads: u32,
    /// Concurrent imports.
    #[arg(long, default_value_t = 32)]
    pub import_concurrency: usize,
    /// Readers of the refresh storm.
    #[arg(long, default_value_t = 1000)]
    pub storm_readers: usize,
    /// Refresh storms (each on a connection of its own, A B A B with the same reads of a
    /// connection that needs no refresh); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub storm_rounds: usize,
    /// The fake provider's token-endpoint latency during the storm, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub provider_latency_ms: u64,
    /// Run on PostgreSQL too (a fresh database is created on this server and dropped).
    /// Default: TOKENWARDEN_BENCH_POSTGRES_URL, else TOKENWARDEN_TEST_POSTGRES_URL.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Skip SQLite (e.g. to repeat only the PostgreSQL part).
    #[arg(long)]
    pub no_sqlite: bool,
    /// Use this binary instead of building `tokenwarden` with `cargo build --release`.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Build the server with the dev profile (CI's smoke run; figures mean nothing).
    #[arg(long)]
    pub debug_build: bool,
    /// A smoke run (small numbers, about a minute, nothing to read into the figures).
    #[arg(long)]
    pub quick: bool,
}

impl Args {
    /// Applies `--quick` and the PostgreSQL URL from the environment.
    pub fn resolved(mut self) -> Self {
        if self.quick {
            self.connections = self.connections.min(300);
            self.large = self.large.min(1_000);
            self.rounds = 1;
            self.duration = 1;
            self.storm_readers = self.storm_readers.min(100);
            self.storm_rounds = 1;
        }
        if self.postgres.is_none() {
            self.postgres = [
                "TOKENWARDEN_BENCH_POSTGRES_URL",
                "TOKENWARDEN_TEST_POSTGRES_URL",
            ]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
        }
        self
    }
}
