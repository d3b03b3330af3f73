//! The `tokenwarden` binary: command-line parsing and wiring only.

mod audit;
mod config;
#[cfg(feature = "dev-provider")]
mod dev;
mod migrate;
mod providers;
mod refresher;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tokenwarden",
    version,
    about = "A self-hosted OAuth 2.0 credential vault"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server.
    Serve(Box<config::ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(migrate::MigrateArgs),
    /// Print the OpenAPI document the server publishes at /openapi.json.
    Openapi,
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Copy every vault from one database to another (e.g. SQLite to PostgreSQL), as
    /// stored: nothing is decrypted, the same keys open the copy.
    Copy(audit::CopyArgs),
    /// List the provider catalog (built-in and the operator directory), offline.
    Providers(providers::ProvidersArgs),
    /// Refresh a zero-knowledge vault's connections ahead of expiry, with a
    /// `refresh`-role key, until stopped; never receives a token.
    Refresher(Box<refresher::RefresherArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Openapi => print_openapi(),
        Command::Audit(cmd) => audit::run(cmd).await,
        Command::Copy(args) => audit::copy(args).await,
        Command::Providers(args) => providers::run(&args),
        Command::Refresher(args) => refresher::run(*args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenwarden: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi() -> anyhow::Result<()> {
    let doc = tokenwarden_server::openapi();
    let json = serde_json::to_string_pretty(&doc)?;
    #[expect(
        clippy::print_stdout,
        reason = "printing the document is this command's job"
    )]
    {
        println!("{json}");
    }
    Ok(())
}
