//! One-time tokens in SQLite: the shared SQL of `store::shared::tokens`.

use super::SqliteStore;

crate::store::shared::tokens::token_store!(SqliteStore);
