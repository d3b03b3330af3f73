//! Login timing: a wrong password for a known account and any password for an unknown
//! one cost the same (both run Argon2id with the same parameters, one account lookup
//! and one audit write), so the time of a failed HTTP Basic login does not tell
//! whether an account exists.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokenwarden_service::FAILURE_WINDOW_MINUTES;
use tokenwarden_testing::spawn_app;

use crate::helpers::{Auth, assert_basic_unauthorized, get};
use crate::oauth_support::report;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "correct horse battery stapler";
/// Tries of each kind that are measured, after a few that warm the server up.
const TRIES: usize = 200;
const WARM_UP: usize = 5;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_account_take_the_same_time_to_refuse() {
    let app = spawn_app().await;
    app.create_account(EMAIL, PASSWORD).await;
    let mut known = Vec::with_capacity(TRIES);
    let mut unknown = Vec::with_capacity(TRIES);
    // known - unknown of each adjacent pair, in ms: what load does to both cancels out.
    let mut paired = Vec::with_capacity(TRIES);
    let started = Instant::now();

    // Interleaved (unknown, known, unknown, ...) so that load on the machine falls on
    // both kinds alike. Before each try the clock passes the failure window, so the
    // known account's earlier failures never trip the limit: every try reaches the
    // password check, as the 401s (not 429s) below show.
    for i in 0..WARM_UP + TRIES {
        app.clock.advance_secs((FAILURE_WINDOW_MINUTES + 1) * 60);
        let email = format!("nobody-{i}@example.com");
        let t = Instant::now();
        let answer = get(&app, "/v1/vaults", Auth::Basic(&email, WRONG)).await;
        let unknown_took = t.elapsed();
        assert_basic_unauthorized(&answer);

        app.clock.advance_secs((FAILURE_WINDOW_MINUTES + 1) * 60);
        let t = Instant::now();
        let answer = get(&app, "/v1/vaults", Auth::Basic(EMAIL, WRONG)).await;
        let known_took = t.elapsed();
        assert_basic_unauthorized(&answer);

        if i >= WARM_UP {
            unknown.push(unknown_took);
            known.push(known_took);
            paired.push(ms(known_took) - ms(unknown_took));
        }
    }
    let answer = get(&app, "/v1/vaults", Auth::Basic(EMAIL, PASSWORD)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    known.sort();
    unknown.sort();
    paired.sort_by(f64::total_cmp);
    let (k, u) = (percentile(&known, 50), percentile(&unknown, 50));
    let difference = ms(k) - ms(u);
    let paired_median = paired[(paired.len() - 1) / 2];
    report(format_args!(
        "login timing over {TRIES} interleaved tries each ({:.1} s in all): \
         known account, wrong password: median {:.2} ms (p10 {:.2}, p90 {:.2}); \
         unknown account: median {:.2} ms (p10 {:.2}, p90 {:.2}); \
         difference of the medians {difference:+.2} ms, median of the paired \
         differences {paired_median:+.2} ms",
        started.elapsed().as_secs_f64(),
        ms(k),
        ms(percentile(&known, 10)),
        ms(percentile(&known, 90)),
        ms(u),
        ms(percentile(&unknown, 10)),
        ms(percentile(&unknown, 90)),
    ));
    assert!(
        difference.abs() < 5.0,
        "medians differ by {difference:.2} ms"
    );
}
