//! `tokenwarden copy`: every vault from one database to another, as stored.

use tokenwarden_store::copy::COPY_TABLES;
use tokenwarden_store::{Store, StoreError};

/// Rows per page read and per transaction written.
const PAGE: u32 = 500;

/// How many rows of each table were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target database is not empty; copy only into a freshly created database")]
    TargetNotEmpty,
    #[error("reading the source failed at table {table}: {source}")]
    Read {
        table: &'static str,
        #[source]
        source: StoreError,
    },
    #[error(
        "writing the target failed at table {table} (the target now holds part of the copy: drop it and start again): {source}"
    )]
    Write {
        table: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("the copy's audit log does not verify: {0}")]
    Audit(#[from] crate::audit::AuditVerifyError),
}

/// Copies every table in key order, page by page; then checks the copy's audit chains.
/// Nothing is decrypted: the copy opens with the same API keys and passwords.
pub async fn copy_store(from: &dyn Store, to: &dyn Store) -> Result<CopyReport, CopyError> {
    if !to
        .is_empty()
        .await
        .map_err(|source| CopyError::Write { table: "-", source })?
    {
        return Err(CopyError::TargetNotEmpty);
    }
    let mut report = CopyReport { tables: Vec::new() };
    for table in COPY_TABLES {
        let mut after = None;
        let mut copied = 0u64;
        loop {
            let rows = from
                .copy_page(table, after.take(), PAGE)
                .await
                .map_err(|source| CopyError::Read {
                    table: table.name,
                    source,
                })?;
            let full = rows.len() == PAGE as usize;
            after = rows.last().cloned();
            copied += rows.len() as u64;
            if !rows.is_empty() {
                to.copy_insert(table, rows)
                    .await
                    .map_err(|source| CopyError::Write {
                        table: table.name,
                        source,
                    })?;
            }
            if !full {
                break;
            }
        }
        report.tables.push((table.name, copied));
    }
    to.copy_finish()
        .await
        .map_err(|source| CopyError::Write { table: "-", source })?;
    crate::audit::verify_audit(to).await?;
    Ok(report)
}
