//! Accounts (registrations, invitations, email challenges, imports) in PostgreSQL: the shared SQL of
//! `store::accounts_sql`.

crate::store::accounts_sql::account_store!(PostgresStore, sqlx::PgConnection);

use super::PostgresStore;
