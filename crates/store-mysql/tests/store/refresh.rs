//! Refresh coordination against MySQL: the lease, the fenced commit, needs_reauth.

use std::sync::Arc;

use tokenwarden_store::*;

use crate::fixtures::*;

#[tokio::test]
async fn the_refresh_lease_is_exclusive_until_it_expires_and_commits_are_fenced() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        store
            .insert_connection(
                upsert(&vault, "c1", &app.id, 1_000, 1),
                audit(Some(&vault), "connection.import", 4),
            )
            .await
            .unwrap();
        let c1 = cid("c1");

        let racers: Vec<_> = (0..20)
            .map(|i| {
                let (store, vault, c1) = (Arc::clone(&store), vault.clone(), c1.clone());
                tokio::spawn(async move {
                    store
                        .acquire_refresh_lease(
                            &vault,
                            &c1,
                            1,
                            &format!("owner-{i}"),
                            at(60_000),
                            at(10_000),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for r in racers {
            wins += usize::from(r.await.unwrap());
        }
        let holder = store
            .connection(&vault, &c1)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .unwrap();
        let renewed = store
            .acquire_refresh_lease(&vault, &c1, 1, &holder, at(60_000), at(11_000))
            .await
            .unwrap();
        let stale_version = store
            .acquire_refresh_lease(&vault, &c1, 0, "x", at(60_000), at(99_000))
            .await
            .unwrap();
        let after_expiry = store
            .acquire_refresh_lease(&vault, &c1, 1, "late", at(120_000), at(60_000))
            .await
            .unwrap();
        store
            .release_refresh_lease(&vault, &c1, &holder)
            .await
            .unwrap();
        let still_late = store.connection(&vault, &c1).await.unwrap().unwrap();

        let committed = store
            .commit_refresh(
                &vault,
                &c1,
                1,
                tokens(70_000, 4),
                audit(Some(&vault), "connection.refresh", 5),
                vec![],
            )
            .await
            .unwrap();
        let fenced = store
            .commit_refresh(
                &vault,
                &c1,
                1,
                tokens(71_000, 5),
                audit(Some(&vault), "connection.refresh", 6),
                vec![],
            )
            .await
            .unwrap();
        let c = store.connection(&vault, &c1).await.unwrap().unwrap();

        assert_eq!(wins, 1);
        assert!(renewed);
        assert!(!stale_version);
        assert!(after_expiry);
        assert_eq!(still_late.lease_owner.as_deref(), Some("late"));
        assert_eq!(still_late.lease_until, Some(at(120_000)));
        assert!(committed);
        assert!(!fenced);
        assert_eq!(c.version, 2);
        assert_eq!(c.token_set, Ciphertext::new(vec![4, 0, 4]));
        assert_eq!(c.refreshed_at, Some(at(70_000)));
        assert_eq!(c.lease_owner, None);
        let refreshes = store
            .list_audit(&vault, 100, None)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.action == "connection.refresh")
            .count();
        assert_eq!(refreshes, 1);
    })
    .await;
}

#[tokio::test]
async fn only_the_lease_holder_at_the_leased_version_marks_needs_reauth() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        store
            .insert_connection(
                upsert(&vault, "c1", &app.id, 1_000, 1),
                audit(Some(&vault), "connection.import", 4),
            )
            .await
            .unwrap();
        let c1 = cid("c1");
        assert!(
            store
                .acquire_refresh_lease(&vault, &c1, 1, "me", at(60_000), at(10_000))
                .await
                .unwrap()
        );
        store
            .release_refresh_lease(&vault, &c1, "someone-else")
            .await
            .unwrap();

        let not_owner = store
            .set_health(
                &vault,
                &c1,
                1,
                Some("someone-else"),
                needs_reauth(0),
                Some(audit(Some(&vault), "connection.reauth", 5)),
                vec![],
            )
            .await
            .unwrap();
        let wrong_version = store
            .set_health(
                &vault,
                &c1,
                2,
                Some("me"),
                needs_reauth(0),
                Some(audit(Some(&vault), "connection.reauth", 6)),
                vec![],
            )
            .await
            .unwrap();
        let marked = store
            .set_health(
                &vault,
                &c1,
                1,
                Some("me"),
                needs_reauth(0),
                Some(audit(Some(&vault), "connection.reauth", 7)),
                vec![],
            )
            .await
            .unwrap();
        let c = store.connection(&vault, &c1).await.unwrap().unwrap();
        let gone = store
            .delete_connection(
                &vault,
                &c1,
                audit(Some(&vault), "connection.delete", 8),
                vec![],
            )
            .await
            .unwrap();
        let gone_again = store
            .delete_connection(
                &vault,
                &c1,
                audit(Some(&vault), "connection.delete", 9),
                vec![],
            )
            .await
            .unwrap();

        assert!(!not_owner);
        assert!(!wrong_version);
        assert!(marked);
        assert_eq!(c.status, ConnectionStatus::NeedsReauth);
        assert_eq!(c.lease_owner, None);
        assert!(gone);
        assert!(!gone_again);
        let actions: Vec<String> = store
            .list_audit(&vault, 2, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["connection.delete", "connection.reauth"]);
    })
    .await;
}
