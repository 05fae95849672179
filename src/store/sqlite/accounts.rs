//! Accounts (registrations, invitations, email challenges, imports) in SQLite: the shared SQL of `store::shared::accounts`.

use super::SqliteStore;

crate::store::shared::accounts::account_store!(SqliteStore, sqlx::SqliteConnection);
