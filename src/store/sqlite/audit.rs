//! The audit log in SQLite: the shared SQL of `store::shared::audit`.

use super::SqliteStore;

crate::store::shared::audit::audit_store!(SqliteStore, sqlx::Sqlite);
