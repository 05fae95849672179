//! Users and their roles in SQLite: the shared SQL of `store::shared::users`.

use super::SqliteStore;

crate::store::shared::users::user_store!(SqliteStore);
