//! One-time tokens in PostgreSQL: the shared SQL of `store::shared::tokens`.

use super::PostgresStore;

crate::store::shared::tokens::token_store!(PostgresStore);
