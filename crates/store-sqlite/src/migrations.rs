//! Embedded migrations, applied at start (rusqlite_migration tracks them in
//! `PRAGMA user_version`).

use rusqlite_migration::{M, Migrations};

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_foundation.sql")),
        M::up(include_str!("../migrations/0002_oauth.sql")),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
