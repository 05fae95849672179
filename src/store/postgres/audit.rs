//! The audit log in PostgreSQL: the shared SQL of `store::shared::audit`.

use super::PostgresStore;

crate::store::shared::audit::audit_store!(PostgresStore, sqlx::Postgres);
