//! Embedded migrations (refinery), applied under a PostgreSQL advisory lock so that
//! replicas starting at once take turns: the first applies, the others find nothing
//! left to do.

use tokenwarden_store::StoreError;
use tokio_postgres::NoTls;
use tracing::info;

use crate::url::PgUrl;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// `pg_advisory_lock` key of tokenwarden's migrations (the bytes of "twmigr01").
const MIGRATION_LOCK: i64 = 0x7477_6d69_6772_3031;

/// A migration that [`migrate`] applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
}

/// Applies every pending migration on its own connection, holding the migration lock
/// for the whole run. Returns what it applied (nothing when the schema was current).
pub async fn migrate(url: &PgUrl) -> Result<Vec<AppliedMigration>, StoreError> {
    let (mut client, connection) = url
        .config()
        .connect(NoTls)
        .await
        .map_err(StoreError::backend)?;
    let driver = tokio::spawn(async move {
        // The connection ends when the client is dropped; its error is the client's too.
        let _ = connection.await;
    });
    let result = async {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(StoreError::backend)?;
        let report = embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(|e| StoreError::Corrupt(format!("migration failed: {e}")));
        // Released explicitly for the report's sake; closing the session would too.
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(StoreError::backend)?;
        report
    }
    .await;
    drop(client);
    let _ = driver.await;
    let applied: Vec<AppliedMigration> = result?
        .applied_migrations()
        .iter()
        .map(|m| AppliedMigration {
            version: i64::from(m.version()),
            name: m.name().to_owned(),
        })
        .collect();
    for m in &applied {
        info!(migration.version = m.version, migration.name = %m.name, "applied migration");
    }
    Ok(applied)
}
