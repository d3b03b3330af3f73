//! What the run prints: each round as it ends (stderr), then one summary (stdout)
//! with the targets of issue 8 beside the figures.
#![expect(
    clippy::print_stdout,
    reason = "the summary is the benchmark's output; progress goes to stderr"
)]

use std::path::Path;
use std::time::Duration;

use crate::args::Args;
use crate::backend::Backend;
use crate::server::Rss;
use crate::storm::Storm;
use crate::wrk::Round;

#[derive(Debug)]
pub struct BackendReport {
    pub backend: Backend,
    pub ready_after: Duration,
    pub idle_after_start: Rss,
    pub idle_after_load: Rss,
    /// How long after the load the RSS last fell.
    pub settled_after: Duration,
    pub rss_under_load_kib: u64,
    pub connections: u64,
    pub import: Duration,
    pub healthz: Option<Round>,
    pub token: Option<Round>,
    pub pgbench_tps: Option<f64>,
    pub storm: Storm,
    pub large: Option<Large>,
}

#[derive(Debug)]
pub struct Large {
    pub n: u64,
    pub import: Duration,
    pub small: Option<Round>,
    pub big: Option<Round>,
}

pub fn preamble(args: &Args, binary: &Path) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    eprintln!("tokenwarden-bench: {}", binary.display());
    eprintln!("machine: {cpus} CPUs ({model})");
    eprintln!(
        "wrk -t{} -c{} -d{}s per round, {} round(s) of each, A B A B; {} connections",
        args.wrk_threads, args.wrk_connections, args.duration, args.rounds, args.connections
    );
    eprintln!("columns: requests/s, p50, p99 (latency), bad = non-2xx answers + socket errors");
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1e3)
}

pub fn round(n: usize, what: &str, r: &Round) {
    eprintln!(
        "  round {n}: {what:<16} {:>9.0} req/s  p50 {:>9}  p99 {:>9}  bad {} of {}",
        r.rps,
        ms(r.p50_us),
        ms(r.p99_us),
        r.bad,
        r.requests
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}

fn line(label: &str, value: String, target: Option<(&str, bool)>) {
    match target {
        Some((t, ok)) => println!("  {label:<44} {value:<30} {} {t}", verdict(ok)),
        None => println!("  {label:<44} {value}"),
    }
}

fn rps(r: &Option<Round>) -> String {
    match r {
        Some(r) => format!(
            "{:.0} req/s (p50 {}, p99 {}){}",
            r.rps,
            ms(r.p50_us),
            ms(r.p99_us),
            if r.bad > 0 {
                format!(" [{} BAD answers]", r.bad)
            } else {
                String::new()
            }
        ),
        None => "-".into(),
    }
}

pub fn summary(args: &Args, reports: &[BackendReport]) {
    println!();
    println!(
        "tokenwarden-bench summary (medians of {} round(s), wrk -t{} -c{} -d{}s)",
        args.rounds, args.wrk_threads, args.wrk_connections, args.duration
    );
    for r in reports {
        println!("\n{}:", r.backend.name());
        line(
            "start -> /readyz (fresh database)",
            format!("{:.0} ms", r.ready_after.as_secs_f64() * 1e3),
            (r.backend == Backend::Sqlite)
                .then_some(("< 300 ms", r.ready_after < Duration::from_millis(300))),
        );
        line(
            "idle RSS after start",
            mib(r.idle_after_start.now_kib),
            Some(("< 30 MiB", r.idle_after_start.now_kib < 30 * 1024)),
        );
        line(
            "RSS under load (max sampled)",
            mib(r.rss_under_load_kib),
            None,
        );
        line(
            "idle RSS after the load (settled)",
            format!(
                "{} ({:.1} s after; peak {})",
                mib(r.idle_after_load.now_kib),
                r.settled_after.as_secs_f64(),
                mib(r.idle_after_load.peak_kib)
            ),
            Some(("< 30 MiB", r.idle_after_load.now_kib < 30 * 1024)),
        );
        line(
            &format!("import of {} connections via the API", r.connections),
            format!(
                "{:.1} s ({:.0}/s)",
                r.import.as_secs_f64(),
                r.connections as f64 / r.import.as_secs_f64().max(1e-9)
            ),
            None,
        );
        line("GET /healthz", rps(&r.healthz), None);
        line(
            &format!("GET /v1/connections/{{id}}/token ({})", r.connections),
            rps(&r.token),
            None,
        );
        if let (Some(h), Some(t)) = (r.healthz, r.token) {
            let ratio = t.rps / h.rps.max(1e-9);
            let need = match r.backend {
                Backend::Sqlite => 0.50,
                Backend::Postgres => 0.25,
            };
            line(
                "token / healthz",
                format!("{:.1} %", ratio * 100.0),
                Some((&format!(">= {:.0} %", need * 100.0), ratio >= need)),
            );
            if let Some(pg) = r.pgbench_tps {
                line(
                    "pgbench -S (same server, same -c/-j)",
                    format!("{pg:.0} tps"),
                    None,
                );
                let ratio = t.rps / pg.max(1e-9);
                line(
                    "token / pgbench -S",
                    format!("{:.1} %", ratio * 100.0),
                    Some((">= 40 %", ratio >= 0.40)),
                );
            }
        }
        if let Some(l) = &r.large {
            line(
                &format!("import of {} connections via the API", l.n),
                format!(
                    "{:.1} s ({:.0}/s)",
                    l.import.as_secs_f64(),
                    l.n as f64 / l.import.as_secs_f64().max(1e-9)
                ),
                None,
            );
            line(
                &format!("token @ {} (A)", r.connections),
                rps(&l.small),
                None,
            );
            line(&format!("token @ {} (B)", l.n), rps(&l.big), None);
            if let (Some(s), Some(b)) = (l.small, l.big) {
                let ratio = b.rps / s.rps.max(1e-9);
                line(
                    "B / A",
                    format!("{:.1} %", ratio * 100.0),
                    Some((">= 90 %", ratio >= 0.90)),
                );
            }
        }
        let s = &r.storm;
        let calls: Vec<String> = s
            .rounds
            .iter()
            .map(|r| r.provider_refreshes.to_string())
            .collect();
        let answers: usize = s.rounds.iter().map(|r| r.ok).sum();
        let tokens: Vec<String> = s
            .rounds
            .iter()
            .map(|r| r.distinct_tokens.to_string())
            .collect();
        line(
            &format!(
                "refresh storm: {} readers x {}, provider calls",
                s.readers,
                s.rounds.len()
            ),
            format!(
                "{} ({answers} answers 200, distinct tokens {})",
                calls.join(", "),
                tokens.join(", ")
            ),
            Some((
                "== 1 each",
                !s.rounds.is_empty() && s.rounds.iter().all(|r| r.provider_refreshes == 1),
            )),
        );
        if let Some(m) = s.median() {
            let over = m.over(s.provider_latency);
            let mut all: Vec<Duration> = s
                .rounds
                .iter()
                .map(|r| r.over(s.provider_latency))
                .collect();
            all.sort();
            let all: Vec<String> = all
                .iter()
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
                .collect();
            line(
                "refresh storm: total - provider latency",
                format!(
                    "{:.1} ms (median; all: {} ms; latency {} ms)",
                    over.as_secs_f64() * 1e3,
                    all.join(", "),
                    s.provider_latency.as_millis()
                ),
                Some(("<= 50 ms", over <= Duration::from_millis(50))),
            );
        }
        if let Some(plain) = s.median_plain_reads() {
            line(
                &format!("the same {} reads, no refresh due", s.readers),
                format!("{:.1} ms (median)", plain.as_secs_f64() * 1e3),
                None,
            );
        }
    }
}
