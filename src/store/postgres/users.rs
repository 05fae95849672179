//! Users and their roles in PostgreSQL: the shared SQL of `store::shared::users`.

use super::PostgresStore;

crate::store::shared::users::user_store!(PostgresStore);
