//! One whole run: every backend asked for, each on fresh databases.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokenwarden_testing::TestDatabase;

use crate::api::{Api, Vault};
use crate::args::Args;
use crate::backend::Backend;
use crate::pgbench::PgBench;
use crate::report::{self, BackendReport, Large};
use crate::server::{Rss, Server, rss_of};
use crate::storm;
use crate::wrk::{self, Round, Target, Wrk};

pub async fn run(args: Args) -> Result<()> {
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => crate::server::build(args.debug_build)?,
    };
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let wrk = Wrk::new(
        scratch.path(),
        args.wrk_threads,
        args.wrk_connections,
        Duration::from_secs(args.duration),
    )?;
    report::preamble(&args, &binary);
    let mut reports = Vec::new();
    if !args.no_sqlite {
        reports.push(bench_backend(&args, &binary, &wrk, scratch.path(), Backend::Sqlite).await?);
    }
    if args.postgres.is_some() {
        reports.push(bench_backend(&args, &binary, &wrk, scratch.path(), Backend::Postgres).await?);
    } else {
        eprintln!(
            "\n(PostgreSQL skipped: set TOKENWARDEN_BENCH_POSTGRES_URL or pass --postgres URL)"
        );
    }
    report::summary(&args, &reports);
    Ok(())
}

/// A fresh database of `backend` (dropped with the handle).
async fn fresh_database(
    args: &Args,
    backend: Backend,
    scratch: &Path,
    name: &str,
) -> Result<TestDatabase> {
    Ok(match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir_in(scratch)
                .with_context(|| format!("a directory for the {name} database"))?;
            TestDatabase::sqlite_in(Arc::new(dir))
        }
        Backend::Postgres => {
            let url = args.postgres.as_deref().unwrap_or_default();
            TestDatabase::create(url).await
        }
    })
}

/// A server on a fresh database, with a vault and `n` imported connections.
struct Prepared {
    server: Server,
    api: Api,
    vault: Vault,
    idle_after_start: Rss,
    import: Duration,
    _database: TestDatabase,
}

async fn prepare(
    args: &Args,
    binary: &Path,
    scratch: &Path,
    backend: Backend,
    name: &str,
    n: u64,
) -> Result<Prepared> {
    let database = fresh_database(args, backend, scratch, name).await?;
    let log: PathBuf = scratch.join(format!("{}-{name}.log", backend.name()));
    let server = Server::start(binary, database.url(), &log).await?;
    // Settle: the figure is the process at rest, not mid-start-up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_after_start = server.rss_kib()?;
    let api = Api::new(&server.base_url)?;
    let vault = api.vault().await?;
    eprintln!(
        "  [{name}] ready {:.0} ms after start; importing {n} connections through POST /v1/connections ({} at a time) ...",
        server.ready_after.as_secs_f64() * 1e3,
        args.import_concurrency
    );
    let import = api.import(&vault, 0, n, args.import_concurrency).await?;
    eprintln!(
        "  [{name}] imported {n} in {:.1} s ({:.0}/s)",
        import.as_secs_f64(),
        n as f64 / import.as_secs_f64().max(1e-9)
    );
    Ok(Prepared {
        server,
        api,
        vault,
        idle_after_start,
        import,
        _database: database,
    })
}

/// The server's RSS once it has settled after the load, and how long after the load it
/// last fell: sampled every 250 ms until it has not fallen (by 256 KiB or more) for 3 s,
/// or for at most 20 s. An allocator returns freed memory to the system over time, not
/// at once; the resting size is the figure, not a snapshot taken mid-way.
async fn settled_rss(server: &Server) -> Result<(Rss, Duration)> {
    let started = std::time::Instant::now();
    let mut low = server.rss_kib()?;
    let mut fell_at = started;
    while started.elapsed() < Duration::from_secs(20) && fell_at.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = server.rss_kib()?;
        if now.now_kib + 256 <= low.now_kib {
            fell_at = std::time::Instant::now();
        }
        if now.now_kib < low.now_kib {
            low = now;
        }
    }
    Ok((low, fell_at - started))
}

/// Samples a process's RSS every 100 ms while a round runs; keeps the largest.
struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, max) = (stop.clone(), max.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = rss_of(pid) {
                        max.fetch_max(rss.now_kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { stop, max, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.max.load(Ordering::Relaxed)
    }
}

async fn bench_backend(
    args: &Args,
    binary: &Path,
    wrk: &Wrk,
    scratch: &Path,
    backend: Backend,
) -> Result<BackendReport> {
    eprintln!("\n== {} ==", backend.name());
    let main = prepare(args, binary, scratch, backend, "main", args.connections).await?;
    let token = Target::Token {
        n: args.connections,
        key: main.vault.read_key.clone(),
    };

    // On PostgreSQL, pgbench -S on the same server is the third column of each round.
    let pgbench = match (backend, args.postgres.as_deref()) {
        (Backend::Postgres, Some(url)) => {
            Some(PgBench::init(url, if args.quick { 1 } else { 10 }).await?)
        }
        _ => None,
    };
    let mut pgbench_tps = Vec::new();

    // A B A B: the server's floor and the token read, alternating, so that whatever
    // else the machine does affects both alike.
    let mut healthz_rounds = Vec::new();
    let mut token_rounds = Vec::new();
    let mut rss_under_load = 0;
    for r in 1..=args.rounds {
        let h = wrk.run(&main.server.base_url, &Target::Healthz).await?;
        report::round(r, "healthz", &h);
        let sampler = RssSampler::start(main.server.pid);
        let t = wrk.run(&main.server.base_url, &token).await?;
        rss_under_load = rss_under_load.max(sampler.finish().await);
        report::round(r, "token", &t);
        healthz_rounds.push(h);
        token_rounds.push(t);
        if let Some(pg) = &pgbench {
            let tps = pg
                .select_only(wrk.connections, wrk.threads, wrk.duration)
                .await?;
            eprintln!("  round {r}: pgbench -S        {tps:>9.0} tps");
            pgbench_tps.push(tps);
        }
    }

    let pgbench = if pgbench_tps.is_empty() {
        None
    } else {
        pgbench_tps.sort_by(f64::total_cmp);
        pgbench_tps.get(pgbench_tps.len() / 2).copied()
    };

    eprintln!(
        "  refresh storm: {} concurrent reads of one expiring connection, provider latency {} ms, {} storms ...",
        args.storm_readers, args.provider_latency_ms, args.storm_rounds
    );
    let storm = storm::run(
        &main.api,
        &main.vault,
        args.storm_readers,
        Duration::from_millis(args.provider_latency_ms),
        args.storm_rounds.max(1),
    )
    .await?;

    let large = if args.large > 0 {
        Some(bench_large(args, binary, wrk, scratch, backend, &main, &token).await?)
    } else {
        None
    };

    let (after, settled_after) = settled_rss(&main.server).await?;
    let report = BackendReport {
        backend,
        ready_after: main.server.ready_after,
        idle_after_start: main.idle_after_start,
        idle_after_load: after,
        settled_after,
        rss_under_load_kib: rss_under_load,
        connections: args.connections,
        import: main.import,
        healthz: wrk::median(&healthz_rounds),
        token: wrk::median(&token_rounds),
        pgbench_tps: pgbench,
        storm,
        large,
    };
    main.server.stop().await;
    Ok(report)
}

/// The token read on a second server holding `args.large` connections, alternating
/// with the main one (A B A B).
async fn bench_large(
    args: &Args,
    binary: &Path,
    wrk: &Wrk,
    scratch: &Path,
    backend: Backend,
    main: &Prepared,
    small_token: &Target,
) -> Result<Large> {
    let big = prepare(args, binary, scratch, backend, "large", args.large).await?;
    let big_token = Target::Token {
        n: args.large,
        key: big.vault.read_key.clone(),
    };
    let mut small_rounds: Vec<Round> = Vec::new();
    let mut big_rounds: Vec<Round> = Vec::new();
    for r in 1..=args.rounds {
        let s = wrk.run(&main.server.base_url, small_token).await?;
        report::round(r, &format!("token @{}", args.connections), &s);
        let b = wrk.run(&big.server.base_url, &big_token).await?;
        report::round(r, &format!("token @{}", args.large), &b);
        small_rounds.push(s);
        big_rounds.push(b);
    }
    let large = Large {
        n: args.large,
        import: big.import,
        small: wrk::median(&small_rounds),
        big: wrk::median(&big_rounds),
    };
    big.server.stop().await;
    Ok(large)
}
