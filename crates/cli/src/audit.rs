//! `tokenwarden audit verify`: checks the audit log's hash chains in the database.

use anyhow::{Context, bail};
use clap::Subcommand;
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
            let store =
                tokenwarden_server::app::open_store(&url).context("could not open the database")?;
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
