//! Several `tokenwarden serve` replicas on one database: the backend the suite runs on
//! (`TOKENWARDEN_TEST_DATABASE_URL`: PostgreSQL or MySQL/MariaDB; a SQLite file when
//! unset). A storm of reads of one expiring connection refreshes exactly once across
//! the replicas, and a replica killed mid-refresh loses no refresh token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_testing::TestDatabase;

use crate::oauth_support::{SCOPES, browser, provider_config, report};
use crate::processes::{Process, connect_expiring, set_up};

const REPEATS: usize = 20;
const READS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_refresh_an_expiring_connection_once_under_150_reads() {
    let db = TestDatabase::from_env().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Arc::new(
            Process::start_on(dir.path(), db.url(), name, "info", 5).await,
        ));
    }
    let keys = Arc::new(set_up(&*replicas[0], &provider, &SCOPES).await);
    let mut storm_times = Vec::new();

    for round in 0..REPEATS {
        connect_expiring(&*replicas[round % 3], &keys, &provider).await;
        provider.set_token_latency(Duration::from_millis(100));
        let refreshes_before = provider.refresh_calls();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..READS {
            let replica = replicas[i % 3].clone();
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move {
                let answer = replica.token(&keys, "").await;
                (i % 3, answer.status, answer.text)
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        storm_times.push(started.elapsed());
        provider.set_token_latency(Duration::ZERO);

        let newest = provider.latest_grant().unwrap().access_token.unwrap();
        for (replica, status, text) in &answers {
            assert_eq!(
                *status,
                StatusCode::OK,
                "round {round}, replica {replica}: {text}"
            );
            let token: Value = serde_json::from_str(text).unwrap();
            assert_eq!(token["access_token"], newest.as_str(), "round {round}");
        }
        assert_eq!(
            provider.refresh_calls() - refreshes_before,
            1,
            "round {round}: refreshes at the provider"
        );
        assert_eq!(provider.reuse_detections(), 0, "round {round}");
    }
    storm_times.sort();
    report(format_args!(
        "replicas ({:?}): {REPEATS} rounds x {READS} reads over 3 processes: {} x 200, 1 refresh per round, \
         the same token for all; storm time median {:?}, max {:?} (provider latency 100 ms)",
        db.backend(),
        REPEATS * READS,
        storm_times[REPEATS / 2],
        storm_times[REPEATS - 1],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_refresh_loses_no_refresh_token() {
    let db = TestDatabase::from_env().await;
    let dir = tempfile::tempdir().unwrap();
    let provider = FakeProvider::start(provider_config()).await.unwrap();
    let lease = 2;
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Some(
            Process::start_on(dir.path(), db.url(), name, "info", lease).await,
        ));
    }
    let keys = Arc::new(set_up(replicas[0].as_ref().unwrap(), &provider, &SCOPES).await);
    let (mut served, mut rotated_before_death) = (0, 0);
    let mut waits = Vec::new();

    for round in 0..REPEATS {
        let victim = round % 3;
        let survivor = (round + 1) % 3;
        connect_expiring(replicas[survivor].as_ref().unwrap(), &keys, &provider).await;
        let grant_before = provider.latest_grant().unwrap();
        let refreshes_before = provider.successful_refreshes();
        let calls_before = provider.refresh_calls();
        provider.set_token_latency(Duration::from_millis(1500));

        let mut doomed = replicas[victim].take().unwrap();
        let url = format!("{}/v1/connections/c1/token", doomed.base_url);
        let read_key = keys.read_key.clone();
        let at_victim =
            tokio::spawn(async move { browser().get(url).bearer_auth(read_key).send().await });
        // Kill it once its refresh call is in flight at the provider.
        let deadline = Instant::now() + Duration::from_secs(10);
        while provider.refresh_calls() == calls_before {
            assert!(Instant::now() < deadline, "round {round}: no refresh call");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let killed_at = Instant::now();
        doomed.child.start_kill().unwrap();
        doomed.child.wait().await.unwrap();
        assert!(
            at_victim.await.unwrap().is_err(),
            "round {round}: the victim answered"
        );
        // Past the provider's latency: whatever it would do with the dead call is done.
        tokio::time::sleep(Duration::from_millis(1600).saturating_sub(killed_at.elapsed())).await;
        provider.set_token_latency(Duration::ZERO);
        let completed = provider.successful_refreshes() > refreshes_before;

        let survivor_started = Instant::now();
        let answer = replicas[survivor].as_ref().unwrap().token(&keys, "").await;
        waits.push(survivor_started.elapsed());
        if completed {
            // The provider finished the rotation, but its answer died with the victim.
            rotated_before_death += 1;
            assert_eq!(
                answer.status,
                StatusCode::CONFLICT,
                "round {round}: {}",
                answer.text
            );
        } else {
            let token = answer.expect_json(StatusCode::OK);
            let grant = provider.latest_grant().unwrap();
            assert_eq!(token["refreshed"], true, "round {round}");
            assert_eq!(
                token["access_token"],
                grant.access_token.clone().unwrap().as_str()
            );
            assert_ne!(
                token["access_token"],
                grant_before.access_token.clone().unwrap().as_str()
            );
            assert!(!grant.revoked, "round {round}: the grant was lost");
            assert_eq!(provider.successful_refreshes() - refreshes_before, 1);
            assert_eq!(provider.reuse_detections(), 0, "round {round}");
            served += 1;
        }
        replicas[victim] = Some(
            Process::start_on(dir.path(), db.url(), &format!("r{round}"), "info", lease).await,
        );
    }
    waits.sort();
    report(format_args!(
        "kill ({:?}): {REPEATS} rounds, the refreshing replica SIGKILLed with its provider call in flight: \
         {served} served by another replica with a fresh token and the grant intact, \
         {rotated_before_death} where the provider had completed the rotation first; \
         the next read waited median {:?}, max {:?} (lease {lease} s)",
        db.backend(),
        waits[REPEATS / 2],
        waits[REPEATS - 1],
    ));
    assert_eq!(
        rotated_before_death, 0,
        "the provider call outlived its caller"
    );
}
