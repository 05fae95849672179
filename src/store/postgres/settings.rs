//! Server settings in PostgreSQL: the shared SQL of `store::shared::settings`.

use super::PostgresStore;

crate::store::shared::settings::settings_store!(PostgresStore);
