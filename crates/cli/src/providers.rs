//! `tokenwarden providers`: the provider catalog as the server would load it, without
//! a running server.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde::Serialize;
use tokenwarden_oauth::{CatalogEntry, CatalogSource, ClientAuth, HttpPolicy, Rotation};

#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// The operator directory of catalog files, as for `serve`.
    #[arg(long, env = "TOKENWARDEN_PROVIDERS_DIR", value_name = "DIR")]
    pub providers_dir: Option<PathBuf>,
    /// Print JSON (each entry's full definition and its source) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    source: String,
    #[serde(flatten)]
    definition: &'a tokenwarden_oauth::ProviderSpec,
}

fn source(entry: &CatalogEntry) -> String {
    match &entry.source {
        CatalogSource::Builtin => "builtin".to_owned(),
        CatalogSource::File(path) => path.display().to_string(),
    }
}

pub fn run(args: &ProvidersArgs) -> anyhow::Result<()> {
    let entries =
        tokenwarden_oauth::load_catalog(args.providers_dir.as_deref(), &HttpPolicy::default())
            .map_err(|e| anyhow!("{e}"))?;
    let text = if args.json {
        let list: Vec<JsonEntry<'_>> = entries
            .iter()
            .map(|e| JsonEntry {
                source: source(e),
                definition: e.definition.spec(),
            })
            .collect();
        serde_json::to_string_pretty(&list)?
    } else {
        table(&entries)
    };
    #[expect(
        clippy::print_stdout,
        reason = "printing the catalog is this command's job"
    )]
    {
        println!("{text}");
    }
    Ok(())
}

fn table(entries: &[CatalogEntry]) -> String {
    let header = [
        "KEY", "NAME", "AUTH", "PKCE", "ROTATES", "REVOKE", "PARAMS", "SOURCE",
    ];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            let d = &e.definition;
            [
                d.key().to_string(),
                d.display_name().to_owned(),
                match d.client_auth() {
                    ClientAuth::Basic => "basic",
                    ClientAuth::Post => "post",
                }
                .to_owned(),
                if d.pkce() { "yes" } else { "no" }.to_owned(),
                match d.refresh().rotates {
                    Rotation::Never => "never",
                    Rotation::Always => "always",
                    Rotation::Sometimes => "sometimes",
                }
                .to_owned(),
                if d.revocation_url().is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
                d.params().keys().cloned().collect::<Vec<_>>().join(","),
                source(e),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}
