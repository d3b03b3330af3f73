//! Parsing of `sqlite://` database URLs, refusing anything ambiguous.

use std::path::{Path, PathBuf};

/// A database URL of the form `sqlite://relative/path.db` or `sqlite:///absolute/path.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteUrl {
    path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqliteUrlError {
    #[error(
        "a SQLite database URL must start with sqlite:// (for example sqlite://tokenwarden.db or sqlite:///var/lib/tokenwarden/tokenwarden.db)"
    )]
    Scheme,
    #[error("the SQLite database URL names no file")]
    Empty,
    #[error(
        "in-memory SQLite databases are not supported: every connection would see another database; use a file"
    )]
    Memory,
    #[error(
        "the SQLite database URL has {0}; tokenwarden accepts a plain file path only, so that a typo cannot silently create another database"
    )]
    Ambiguous(&'static str),
    #[error("the directory of the SQLite database does not exist: {0}")]
    MissingDirectory(String),
    #[error("the SQLite database path names a directory: {0}")]
    IsDirectory(String),
}

impl SqliteUrl {
    pub fn parse(url: &str) -> Result<Self, SqliteUrlError> {
        let rest = url
            .strip_prefix("sqlite://")
            .ok_or(SqliteUrlError::Scheme)?;
        if rest.is_empty() {
            return Err(SqliteUrlError::Empty);
        }
        if rest == ":memory:" || rest.starts_with(":memory:") || rest.contains("mode=memory") {
            return Err(SqliteUrlError::Memory);
        }
        if rest.contains('?') {
            return Err(SqliteUrlError::Ambiguous("query parameters"));
        }
        if rest.contains('#') {
            return Err(SqliteUrlError::Ambiguous("a fragment"));
        }
        if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(SqliteUrlError::Ambiguous("spaces or control characters"));
        }
        let decoded = percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .map_err(|_| SqliteUrlError::Ambiguous("percent-encoding that is not UTF-8"))?;
        if decoded.ends_with('/') {
            return Err(SqliteUrlError::IsDirectory(decoded.into_owned()));
        }
        Ok(Self {
            path: PathBuf::from(decoded.as_ref()),
        })
    }

    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks what the file system can tell before opening: the directory exists (a
    /// missing one is more likely a typo than a wish to create it) and the path is not a
    /// directory itself.
    pub fn check_location(&self) -> Result<(), SqliteUrlError> {
        if self.path.is_dir() {
            return Err(SqliteUrlError::IsDirectory(self.path.display().to_string()));
        }
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(SqliteUrlError::MissingDirectory(
                parent.display().to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_and_absolute_paths_are_accepted() {
        assert_eq!(
            SqliteUrl::parse("sqlite://tokenwarden.db").unwrap().path(),
            Path::new("tokenwarden.db")
        );
        assert_eq!(
            SqliteUrl::parse("sqlite:///var/lib/tw/tw.db")
                .unwrap()
                .path(),
            Path::new("/var/lib/tw/tw.db")
        );
        assert_eq!(
            SqliteUrl::parse("sqlite://data/my%20vault.db")
                .unwrap()
                .path(),
            Path::new("data/my vault.db")
        );
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for bad in [
            "tokenwarden.db",
            "sqlite:tokenwarden.db",
            "sqlite:/tokenwarden.db",
            "sqlite://",
            "sqlite://:memory:",
            "sqlite://x.db?mode=rwc",
            "sqlite://x.db#frag",
            "sqlite://x .db",
            "sqlite://dir/",
            "sqlite3://x.db",
            "SQLITE://x.db",
        ] {
            assert!(SqliteUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_missing_directory_is_refused_instead_of_created() {
        let url = SqliteUrl::parse("sqlite:///nonexistent-dir-for-tokenwarden/x.db").unwrap();
        assert!(matches!(
            url.check_location(),
            Err(SqliteUrlError::MissingDirectory(_))
        ));
    }
}
