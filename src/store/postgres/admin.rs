//! The admin console's queries in PostgreSQL: the shared SQL of `store::shared::admin`.

use super::PostgresStore;

crate::store::shared::admin::admin_store!(PostgresStore, sqlx::Postgres);
