//! The admin console's queries in SQLite: the shared SQL of `store::shared::admin`.

use super::SqliteStore;

crate::store::shared::admin::admin_store!(SqliteStore, sqlx::Sqlite);
