//! Server settings in SQLite: the shared SQL of `store::shared::settings`.

use super::SqliteStore;

crate::store::shared::settings::settings_store!(SqliteStore);
