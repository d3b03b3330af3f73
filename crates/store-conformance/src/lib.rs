//! One conformance suite for the [`Store`] trait, run against every backend: each case
//! is a `pub async fn` that takes a fresh, empty store and checks one method family's
//! documented semantics (conflicts, not-found answers, atomicity, fencing, single
//! winners under concurrency, the audit chain, exact round trips).
//!
//! A backend's test file calls [`store_conformance_tests!`] with an async function
//! that opens a fresh store (or `None` to skip, see [`backend_url`]); the macro makes
//! one `#[tokio::test]` per case, so a failure names its case.
//!
//! Test support fails loudly, so this crate panics where a test would.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a conformance suite is test code: a broken expectation must fail the test"
)]

pub mod cases;
pub mod fixtures;

use tokenwarden_store::Store;

/// The environment variable that lists backends whose tests must not be skipped
/// (comma-separated: `postgres,mysql`). CI sets it so that a missing database URL
/// fails the run instead of passing it silently.
pub const REQUIRE_BACKENDS: &str = "TOKENWARDEN_TEST_REQUIRE_BACKENDS";

/// The database URL in `env` for `backend`, or `None` (with a note on stderr) when it
/// is unset. Panics when it is unset but [`REQUIRE_BACKENDS`] names `backend`.
pub fn backend_url(env: &str, backend: &str) -> Option<String> {
    match std::env::var(env) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var(REQUIRE_BACKENDS).unwrap_or_default();
            if required
                .split(',')
                .any(|b| b.trim().eq_ignore_ascii_case(backend))
            {
                panic!("{REQUIRE_BACKENDS} requires {backend}, but {env} is not set");
            }
            eprintln!("note: {env} is not set; skipping the {backend} store tests");
            None
        }
    }
}

/// A store under test and whatever keeps its database alive (dropped after the case).
pub type FreshStore = (std::sync::Arc<dyn Store>, Box<dyn std::any::Any + Send>);

/// Makes one test per conformance case. `$fresh` is an `async fn() ->
/// Option<FreshStore>` giving a new empty store for each case (`None` skips).
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        $crate::store_conformance_tests!(@cases $fresh;
            settings_are_set_once_and_read_back,
            accounts_round_trip_and_conflict_on_email,
            login_attempts_are_limited_pruned_and_cleared,
            login_attempts_racing_never_exceed_the_limit,
            vaults_round_trip_with_membership,
            a_failed_vault_creation_writes_nothing,
            api_keys_round_trip_every_field,
            a_conflicting_api_key_writes_no_audit_record,
            revoking_a_key_wipes_its_secrets_once,
            audit_pages_newest_first_before_a_record,
            audit_chains_verify_after_concurrent_appends,
            audit_batches_keep_each_chains_order_beside_single_appends,
            a_failed_audit_batch_writes_none_of_its_records,
            providers_round_trip_and_conflict,
            apps_conflict_update_and_delete,
            connect_sessions_round_trip_with_and_without_link,
            connect_link_is_spent_by_exactly_one_caller,
            connect_link_spending_respects_expiry_and_status,
            begin_exchange_has_exactly_one_winner,
            finish_connect_replaces_tokens_in_place_and_refuses_another_app,
            fail_connect_records_the_error,
            insert_connection_conflicts_and_keeps_ids_case_sensitive,
            connection_for_token_joins_app_vault_and_provider,
            api_key_with_connection_reads_both_rows_of_the_keys_vault,
            rewrap_applies_only_to_sealed_tokens_at_the_version,
            refresh_lease_has_one_owner_until_it_expires,
            refresh_lease_is_taken_by_exactly_one_racer,
            commit_refresh_is_fenced_by_version,
            mark_needs_reauth_and_release_require_the_owner,
            delete_connection_writes_audit_only_when_it_deleted,
            audit_chains_and_emptiness_are_reported,
            copy_pages_in_key_order_and_inserts_rows_as_read,
            webhooks_round_trip_with_filter_and_secret_bytes,
            webhook_updates_change_filter_and_disabling_parks_deliveries,
            rotating_a_webhook_secret_keeps_the_previous_one,
            deleting_a_webhook_removes_its_deliveries_and_log,
            events_fan_out_to_subscribed_enabled_endpoints_of_their_vault,
            an_event_to_one_endpoint_ignores_its_filter_but_not_its_vault,
            every_copy_table_pages_with_webhook_rows,
            claimed_deliveries_finish_by_each_outcome,
            a_disabled_endpoints_retry_is_parked,
            two_claimers_never_win_the_same_delivery,
            an_unfinished_claim_is_due_again_when_it_lapses,
            attempts_list_newest_first_up_to_the_limit,
            delivery_queue_counts_due_rows_up_to_the_cap,
            pruning_keeps_pending_events_and_recent_log,
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some((store, guard)) = $fresh().await else {
                    return;
                };
                $crate::cases::$case(store).await;
                drop(guard);
            }
        )*
    };
}
