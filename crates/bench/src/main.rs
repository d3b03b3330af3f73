//! `tokenwarden-bench`: how much the token read costs beyond the HTTP round trip.
//!
//! Builds the release binary, starts it on a fresh database and measures, side by side
//! in one run (A B A B), the server's own floor (`/healthz`) and
//! `GET /v1/connections/{id}/token` on random connections, with wrk as the load
//! generator; then the read at a larger number of connections, a refresh storm against
//! an in-process fake provider, memory and start-up time. Repeats on PostgreSQL when
//! a URL is given. It prints figures and the targets of issue 8; it asserts nothing.
//! See docs/performance.md.

mod api;
mod args;
mod backend;
mod pgbench;
mod report;
mod run;
mod server;
mod storm;
mod wrk;

use anyhow::Result;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let args = args::Args::parse().resolved();
    run::run(args).await
}
