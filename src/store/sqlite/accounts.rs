//! Accounts (registrations, invitations, email challenges, imports) in SQLite: the shared SQL of
//! `store::accounts_sql`.

crate::store::accounts_sql::account_store!(SqliteStore, sqlx::SqliteConnection);

use super::SqliteStore;
