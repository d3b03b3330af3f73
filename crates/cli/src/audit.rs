//! Commands that work on the database itself: `audit verify` checks the audit log's
//! hash chains, `copy` moves every vault to another database.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tokenwarden_service::{AuditVerifyError, verify_audit};

use crate::config::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every audit chain: each record's hash, its link to the record before it,
    /// and each chain's head. Exits non-zero naming the first broken record.
    Verify(DatabaseArgs),
}

#[expect(
    clippy::print_stdout,
    reason = "the verification report is the command's output"
)]
pub async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(db) => {
            let url = db.resolve()?;
            let store = tokenwarden_store_select::open_store(&url)
                .await
                .context("could not open the database")?;
            match verify_audit(store.as_ref()).await {
                Ok(chains) => {
                    let total: i64 = chains.iter().map(|c| c.records).sum();
                    for c in &chains {
                        let name = if c.chain.is_empty() {
                            "server (no vault)"
                        } else {
                            &c.chain
                        };
                        println!("ok  {name}: {} records", c.records);
                    }
                    println!("audit log intact: {} chains, {total} records", chains.len());
                    Ok(())
                }
                Err(AuditVerifyError::Broken(b)) => bail!("audit log BROKEN: {b}"),
                Err(e) => Err(e.into()),
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The database to copy from (sqlite://, postgres:// or mysql://).
    #[arg(
        long,
        value_name = "URL",
        env = "TOKENWARDEN_COPY_FROM",
        hide_env_values = true
    )]
    pub from: String,
    /// The database to copy into; it must be empty (created and migrated if needed).
    #[arg(
        long,
        value_name = "URL",
        env = "TOKENWARDEN_COPY_TO",
        hide_env_values = true
    )]
    pub to: String,
}

#[expect(
    clippy::print_stdout,
    reason = "the copy report is the command's output"
)]
pub async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let from = tokenwarden_store_select::open_store(&args.from)
        .await
        .context("could not open the source database (--from)")?;
    let to = tokenwarden_store_select::open_store(&args.to)
        .await
        .context("could not open the target database (--to)")?;
    let report = tokenwarden_service::copy_store(from.as_ref(), to.as_ref()).await?;
    for (table, rows) in &report.tables {
        println!("{table:>18}: {rows} rows");
    }
    println!("copied; the copy's audit log verifies");
    Ok(())
}
