//! `tokenwarden migrate`: brings the database schema up to date and exits, so that an
//! operator can migrate once before rolling out new replicas (which would otherwise
//! migrate at start, one at a time under the database's lock).

use std::path::PathBuf;

use clap::Args;
use tokenwarden_store_select::migrate_store;

use crate::config::{DEFAULT_DATABASE_URL, secret};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// sqlite://..., postgres://... [default: sqlite://tokenwarden.db].
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the database URL (for URLs with a password).
    #[arg(long, env = "TOKENWARDEN_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let url = secret(
        args.database_url,
        args.database_url_file,
        "TOKENWARDEN_DATABASE_URL",
    )?
    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let applied = migrate_store(&url).await?;
    #[expect(
        clippy::print_stdout,
        reason = "reporting what was applied is this command's job"
    )]
    {
        if applied.is_empty() {
            println!("the schema is up to date; no migration applied");
        }
        for name in &applied {
            println!("applied {name}");
        }
    }
    Ok(())
}
