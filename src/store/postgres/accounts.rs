//! Accounts (registrations, invitations, email challenges, imports) in PostgreSQL: the shared SQL of `store::shared::accounts`.

use super::PostgresStore;

crate::store::shared::accounts::account_store!(PostgresStore, sqlx::PgConnection);
