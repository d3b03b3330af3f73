//! The one row decoder: every backend reads a record from the same column list, in the
//! same order, through [`Cursor`], which each backend implements for its driver's row.
//! The mappers beside each record (`accounts::account`, `apps::app`, ...) are the only
//! place a row becomes a record.

use chrono::{DateTime, Utc};
use tokenwarden_domain::{KeyScope, Roles, Scopes};

use crate::convert::{parsed, time};
use crate::error::{StoreError, StoreResult};

/// Reads a row's columns one after the other. `column` names the column for the
/// corruption error only (`apps.scopes`); a value of the wrong type or a NULL where
/// none is allowed is [`StoreError::Corrupt`].
pub trait Cursor {
    fn text(&mut self, column: &'static str) -> StoreResult<String>;
    fn opt_text(&mut self, column: &'static str) -> StoreResult<Option<String>>;
    fn bytes(&mut self, column: &'static str) -> StoreResult<Vec<u8>>;
    fn opt_bytes(&mut self, column: &'static str) -> StoreResult<Option<Vec<u8>>>;
    fn int(&mut self, column: &'static str) -> StoreResult<i64>;
    fn opt_int(&mut self, column: &'static str) -> StoreResult<Option<i64>>;
    fn flag(&mut self, column: &'static str) -> StoreResult<bool>;
    /// Whether the next column is NULL, without moving past it (a LEFT JOIN's side).
    fn next_is_null(&mut self) -> StoreResult<bool>;
    /// Moves past `n` columns unread.
    fn skip(&mut self, n: usize);

    /// An integer column that must fit `u32` (a key generation).
    fn small(&mut self, column: &'static str) -> StoreResult<u32> {
        parsed(column, u32::try_from(self.int(column)?))
    }

    /// A time stored as Unix milliseconds.
    fn time(&mut self, column: &'static str) -> StoreResult<DateTime<Utc>> {
        time(self.int(column)?)
    }

    fn opt_time(&mut self, column: &'static str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_int(column)?.map(time).transpose()
    }

    /// A text column parsed into a domain value.
    fn parse<T, E>(
        &mut self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<T>
    where
        Self: Sized,
    {
        let text = self.text(column)?;
        parsed(column, parse(&text))
    }

    fn opt_parse<T, E>(
        &mut self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<Option<T>>
    where
        Self: Sized,
    {
        self.opt_text(column)?
            .map(|text| parsed(column, parse(&text)))
            .transpose()
    }

    /// A scope list stored as a JSON array of strings.
    fn scopes(&mut self, column: &'static str) -> StoreResult<Scopes> {
        let json = self.text(column)?;
        let list: Vec<String> = parsed(column, serde_json::from_str(&json))?;
        parsed(column, Scopes::parse(&list))
    }

    /// An API key's scope, stored as JSON.
    fn key_scope(&mut self, column: &'static str) -> StoreResult<KeyScope> {
        let json = self.text(column)?;
        parsed(column, serde_json::from_str(&json))
    }

    /// An API key's roles, stored as a comma-separated list.
    fn roles(&mut self, column: &'static str) -> StoreResult<Roles> {
        let list = self.text(column)?;
        parsed(column, Roles::parse_list(&list))
    }

    /// A text column that must be one of an enum's stored words.
    fn word<T>(&mut self, column: &'static str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
        let text = self.text(column)?;
        parse(&text).ok_or_else(|| StoreError::Corrupt(column.to_owned()))
    }
}

/// The SQL dialects, for the little of a column list that differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// A record's columns as `alias.column`, in the order its mapper reads them.
#[derive(Debug, Clone, Copy)]
pub struct Columns(pub &'static [&'static str]);

impl Columns {
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The SELECT list of `lists` one after the other. MySQL reserves `key`, so there it
    /// is back-quoted.
    pub fn select(dialect: Dialect, lists: &[&Columns]) -> String {
        let mut out = String::new();
        for column in lists.iter().flat_map(|l| l.0.iter()) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            match column.split_once('.') {
                Some((alias, "key")) if dialect == Dialect::Mysql => {
                    out.push_str(alias);
                    out.push_str(".`key`");
                }
                _ => out.push_str(column),
            }
        }
        out
    }
}

/// How a scope list is stored: a JSON array of strings.
pub fn scopes_json(scopes: &Scopes) -> String {
    serde_json::to_string(scopes.as_slice()).unwrap_or_else(|_| "[]".to_owned())
}

/// How an API key's scope is stored.
pub fn key_scope_json(scope: &KeyScope) -> StoreResult<String> {
    serde_json::to_string(scope).map_err(StoreError::backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_quotes_key_columns_only() {
        let a = Columns(&["a.id", "a.key", "a.provider_key"]);
        let b = Columns(&["v.name"]);
        assert_eq!(
            Columns::select(Dialect::Mysql, &[&a, &b]),
            "a.id, a.`key`, a.provider_key, v.name"
        );
        assert_eq!(
            Columns::select(Dialect::Postgres, &[&a, &b]),
            "a.id, a.key, a.provider_key, v.name"
        );
    }
}
