//! Throttling counters in SQLite: the shared SQL of `store::shared::throttle`.

use super::SqliteStore;

crate::store::shared::throttle::throttle_store!(SqliteStore);
