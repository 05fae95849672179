//! Throttling counters in PostgreSQL: the shared SQL of `store::shared::throttle`.

use super::PostgresStore;

crate::store::shared::throttle::throttle_store!(PostgresStore);
