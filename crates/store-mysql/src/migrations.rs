//! Embedded migrations (refinery, recorded in `refinery_schema_history`), run under a
//! server-wide named lock so several replicas starting at once apply each one once.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use tokenwarden_store::StoreError;

use crate::convert::db;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Named locks are server-wide, so the name carries (a hash of) the database: replicas
/// of one deployment wait for each other, other databases on the server do not. A lock
/// name may be 64 characters at most.
const LOCK_NAME: &str = "CONCAT('tokenwarden.migrate.', LEFT(SHA2(DATABASE(), 256), 40))";
/// How long a replica waits for another one's migration before giving up.
const LOCK_WAIT_SECONDS: u32 = 600;

/// Applies the migrations this database lacks and names them (`V1__initial`, ...).
pub(crate) async fn run(pool: &Pool) -> Result<Vec<String>, StoreError> {
    let mut lock = pool.get_conn().await.map_err(db)?;
    let got: Option<Option<i64>> = lock
        .query_first(format!("SELECT GET_LOCK({LOCK_NAME}, {LOCK_WAIT_SECONDS})"))
        .await
        .map_err(db)?;
    if got != Some(Some(1)) {
        return Err(StoreError::Corrupt(format!(
            "another process held the migration lock for {LOCK_WAIT_SECONDS} s; is a migration stuck?"
        )));
    }
    let report = embedded::migrations::runner()
        .run_async(&mut pool.clone())
        .await;
    // Ending the session frees the lock even if RELEASE_LOCK cannot be sent, and keeps a
    // connection that might still hold it out of the pool.
    let _ = lock
        .query_drop(format!("DO RELEASE_LOCK({LOCK_NAME})"))
        .await;
    let _ = lock.disconnect().await;
    let report = report.map_err(|e| StoreError::Corrupt(format!("migration failed: {e}")))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect())
}
