//! The provider catalog: the built-in definitions embedded in the binary, plus an
//! operator directory of `*.toml` files that add entries or replace built-in ones
//! without a release. Every file is checked at start-up; an error names the file and
//! the field (`<file>: <field>: <problem>`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::http::HttpPolicy;
use crate::provider::{DefinitionError, ProviderDefinition, ProviderSpec};
use crate::provider_error::toml_problem;

/// The built-in catalog, embedded at build time: `(file stem, text)`. Each file cites
/// the provider's documentation. Adding a provider is adding a file and a line here.
const BUILTIN: &[(&str, &str)] = &[
    ("airtable", include_str!("../providers/airtable.toml")),
    ("asana", include_str!("../providers/asana.toml")),
    ("atlassian", include_str!("../providers/atlassian.toml")),
    ("bitbucket", include_str!("../providers/bitbucket.toml")),
    ("box", include_str!("../providers/box.toml")),
    ("discord", include_str!("../providers/discord.toml")),
    ("docusign", include_str!("../providers/docusign.toml")),
    ("dropbox", include_str!("../providers/dropbox.toml")),
    ("figma", include_str!("../providers/figma.toml")),
    ("github", include_str!("../providers/github.toml")),
    ("github-app", include_str!("../providers/github-app.toml")),
    ("gitlab", include_str!("../providers/gitlab.toml")),
    ("google", include_str!("../providers/google.toml")),
    ("hubspot", include_str!("../providers/hubspot.toml")),
    ("linear", include_str!("../providers/linear.toml")),
    ("linkedin", include_str!("../providers/linkedin.toml")),
    ("microsoft", include_str!("../providers/microsoft.toml")),
    (
        "microsoft-tenant",
        include_str!("../providers/microsoft-tenant.toml"),
    ),
    ("notion", include_str!("../providers/notion.toml")),
    ("pipedrive", include_str!("../providers/pipedrive.toml")),
    ("quickbooks", include_str!("../providers/quickbooks.toml")),
    ("reddit", include_str!("../providers/reddit.toml")),
    ("salesforce", include_str!("../providers/salesforce.toml")),
    ("shopify", include_str!("../providers/shopify.toml")),
    ("slack", include_str!("../providers/slack.toml")),
    ("slack-user", include_str!("../providers/slack-user.toml")),
    ("spotify", include_str!("../providers/spotify.toml")),
    ("strava", include_str!("../providers/strava.toml")),
    ("twitch", include_str!("../providers/twitch.toml")),
    ("x", include_str!("../providers/x.toml")),
    ("xero", include_str!("../providers/xero.toml")),
    ("zendesk", include_str!("../providers/zendesk.toml")),
    ("zoom", include_str!("../providers/zoom.toml")),
];

/// Where a catalog entry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSource {
    /// Embedded in the binary.
    Builtin,
    /// A file of the operator directory.
    File(PathBuf),
}

/// A catalog entry and where it comes from.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub definition: ProviderDefinition,
    pub source: CatalogSource,
}

/// A catalog file that cannot be used: `<file>: <field>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct CatalogError {
    /// The file, as given (`providers/github.toml` for a built-in one).
    pub file: String,
    /// The field at fault (dotted), or `-` when the file as a whole is.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl CatalogError {
    fn new(file: impl fmt::Display, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Reads one TOML catalog file, naming the field at fault in any error.
pub fn parse_catalog_file(
    file: &str,
    text: &str,
    policy: &HttpPolicy,
) -> Result<ProviderDefinition, CatalogError> {
    let de = toml::Deserializer::new(text);
    let spec: ProviderSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim();
        // A named field says where; a syntax error says nothing without its position.
        if path == "." || path.is_empty() || message.is_empty() {
            CatalogError::new(file, "-", toml_problem(&inner, text))
        } else {
            CatalogError::new(file, path, message.to_owned())
        }
    })?;
    ProviderDefinition::from_spec(spec, policy).map_err(|e| match e {
        DefinitionError::Field { field, problem } => CatalogError::new(file, field, problem),
        DefinitionError::Syntax(problem) => CatalogError::new(file, "-", problem),
    })
}

/// The built-in providers, checked under `policy`. An error is a broken embedded file,
/// caught by this crate's tests.
pub fn builtin_providers_with(
    policy: &HttpPolicy,
) -> Result<Vec<ProviderDefinition>, CatalogError> {
    BUILTIN
        .iter()
        .map(|(stem, text)| {
            let file = format!("providers/{stem}.toml");
            let def = parse_catalog_file(&file, text, policy)?;
            if def.key().as_str() != *stem {
                return Err(CatalogError::new(file, "key", "must match the file name"));
            }
            Ok(def)
        })
        .collect()
}

/// The built-in providers under the strict policy.
pub fn builtin_providers() -> Result<Vec<ProviderDefinition>, CatalogError> {
    builtin_providers_with(&HttpPolicy::default())
}

/// The whole catalog: the built-in entries, then every `*.toml` file of `dir` (in
/// name order), each adding a provider or replacing the built-in one of its key. Two
/// files of the directory with the same key are an error.
pub fn load_catalog(
    dir: Option<&Path>,
    policy: &HttpPolicy,
) -> Result<Vec<CatalogEntry>, CatalogError> {
    let mut entries: BTreeMap<String, CatalogEntry> = BTreeMap::new();
    for def in builtin_providers()? {
        entries.insert(
            def.key().as_str().to_owned(),
            CatalogEntry {
                definition: def,
                source: CatalogSource::Builtin,
            },
        );
    }
    if let Some(dir) = dir {
        for path in catalog_files(dir)? {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| CatalogError::new(&shown, "-", format!("cannot be read: {e}")))?;
            let def = parse_catalog_file(&shown, &text, policy)?;
            let key = def.key().as_str().to_owned();
            if let Some(CatalogEntry {
                source: CatalogSource::File(other),
                ..
            }) = entries.get(&key)
            {
                return Err(CatalogError::new(
                    &shown,
                    "key",
                    format!("`{key}` is already defined by {}", other.display()),
                ));
            }
            entries.insert(
                key,
                CatalogEntry {
                    definition: def,
                    source: CatalogSource::File(path),
                },
            );
        }
    }
    Ok(entries.into_values().collect())
}

fn catalog_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let shown = dir.display().to_string();
    let read = std::fs::read_dir(dir)
        .map_err(|e| CatalogError::new(&shown, "-", format!("cannot be read: {e}")))?;
    let mut files = Vec::new();
    for entry in read {
        let entry =
            entry.map_err(|e| CatalogError::new(&shown, "-", format!("cannot be read: {e}")))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ClientAuth;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn builtin_catalog_loads_with_thirty_providers_each_citing_docs() -> TestResult {
        let providers = builtin_providers()?;
        assert!(providers.len() >= 30, "{}", providers.len());
        for def in &providers {
            assert!(
                !def.docs().is_empty(),
                "{} cites no documentation",
                def.key()
            );
        }
        let google = providers
            .iter()
            .find(|p| p.key().as_str() == "google")
            .ok_or("no google")?;
        assert_eq!(google.issuer(), Some("https://accounts.google.com"));
        assert_eq!(
            google
                .authorize_params()
                .get("access_type")
                .map(String::as_str),
            Some("offline")
        );
        assert!(google.is_oidc());
        let github = providers
            .iter()
            .find(|p| p.key().as_str() == "github")
            .ok_or("no github")?;
        assert_eq!(github.client_auth(), ClientAuth::Post);
        Ok(())
    }

    #[test]
    fn every_refresh_lifetime_in_the_catalog_parses_and_is_positive() -> TestResult {
        let providers = builtin_providers()?;
        let mut with_lifetimes = BTreeMap::new();
        for (stem, text) in BUILTIN {
            let declares = text.contains("idle_expiry_days") || text.contains("lifetime_days");
            let def = providers
                .iter()
                .find(|p| p.key().as_str() == *stem)
                .ok_or("missing entry")?;
            let refresh = def.refresh();
            let (idle, lifetime) = (refresh.idle_expiry(), refresh.lifetime());
            assert_eq!(declares, idle.is_some() || lifetime.is_some(), "{stem}");
            for d in [idle, lifetime].into_iter().flatten() {
                assert!(d > chrono::Duration::zero(), "{stem}: {d}");
            }
            if declares {
                with_lifetimes.insert(*stem, (refresh.idle_expiry_days, refresh.lifetime_days));
            }
        }
        // The documented values (docs/provider-verification.md); a lost or changed
        // number shows here.
        let expected = BTreeMap::from([
            ("airtable", (None, Some(60))),
            ("atlassian", (Some(90), Some(365))),
            ("bitbucket", (Some(90), None)),
            ("box", (Some(60), None)),
            ("docusign", (None, Some(30))),
            ("github-app", (None, Some(184))),
            ("google", (Some(181), None)),
            ("linkedin", (None, Some(365))),
            ("microsoft", (Some(90), None)),
            ("microsoft-tenant", (Some(90), None)),
            ("quickbooks", (Some(100), Some(1826))),
            ("spotify", (None, Some(181))),
            ("xero", (Some(60), None)),
            ("zoom", (None, Some(90))),
        ]);
        assert_eq!(with_lifetimes, expected);
        Ok(())
    }

    #[test]
    fn a_zero_day_refresh_lifetime_is_refused_with_its_field() {
        let text = "key = \"acme\"\ndisplay_name = \"Acme\"\n\
                    authorization_url = \"https://acme.example/a\"\n\
                    token_url = \"https://acme.example/t\"\n\
                    [refresh]\nidle_expiry_days = 0\n";
        let err = parse_catalog_file("acme.toml", text, &HttpPolicy::default()).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("acme.toml: refresh.idle_expiry_days: must be at least one day".to_owned())
        );
    }

    #[test]
    fn a_bad_field_is_named_with_its_file() {
        let text = "key = \"acme\"\ndisplay_name = \"Acme\"\n\
                    authorization_url = \"https://acme.example/a\"\n\
                    token_url = \"https://acme.example/t\"\n\
                    [token_response]\nexpires_in_unit = \"hours\"\n";
        let err = parse_catalog_file("ops/acme.toml", text, &HttpPolicy::default());
        let err = err
            .err()
            .map(|e| (e.file.clone(), e.field.clone(), e.to_string()));
        let Some((file, field, shown)) = err else {
            panic!("a bad unit was accepted")
        };
        assert_eq!(file, "ops/acme.toml");
        assert_eq!(field, "token_response.expires_in_unit");
        assert!(
            shown.starts_with("ops/acme.toml: token_response.expires_in_unit: "),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_value_found_by_the_checks_is_named_too() {
        let text = "key = \"acme\"\ndisplay_name = \"Acme\"\n\
                    authorization_url = \"https://{shop}.acme.example/a\"\n\
                    token_url = \"https://acme.example/t\"\n";
        let err = parse_catalog_file("acme.toml", text, &HttpPolicy::default()).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(
                "acme.toml: authorization_url: uses `{shop}`, which is not declared in params"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_syntax_error_says_where_even_when_the_parser_has_no_words_for_it() {
        // Found by the catalog fuzz target: toml reports a NUL in a comment with an
        // empty message.
        for (text, problem) in [
            (
                "#\0 comment\nkey = \"acme\"\n",
                "is not valid TOML (line 1, column 2)",
            ),
            (
                "key = \"acme\"\nkey = 1\n",
                "duplicate key `key` in document root (line 2, column 1)",
            ),
        ] {
            let err = parse_catalog_file("acme.toml", text, &HttpPolicy::default()).err();
            assert_eq!(
                err.map(|e| (e.field, e.problem)),
                Some(("-".to_owned(), problem.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn operator_files_add_and_replace_entries() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("github.toml"),
            "key = \"github\"\ndisplay_name = \"GitHub Enterprise\"\n\
             authorization_url = \"https://ghe.example/login/oauth/authorize\"\n\
             token_url = \"https://ghe.example/login/oauth/access_token\"\n",
        )?;
        std::fs::write(
            dir.path().join("acme.toml"),
            "key = \"acme\"\ndisplay_name = \"Acme\"\n\
             authorization_url = \"https://acme.example/a\"\n\
             token_url = \"https://acme.example/t\"\n",
        )?;
        std::fs::write(dir.path().join("notes.txt"), "ignored")?;
        let all = load_catalog(Some(dir.path()), &HttpPolicy::default())?;
        let github = all
            .iter()
            .find(|e| e.definition.key().as_str() == "github")
            .ok_or("no github")?;
        assert_eq!(github.definition.display_name(), "GitHub Enterprise");
        assert!(matches!(github.source, CatalogSource::File(_)));
        assert!(all.iter().any(|e| e.definition.key().as_str() == "acme"));
        assert_eq!(all.len(), builtin_providers()?.len() + 1);
        Ok(())
    }
}
