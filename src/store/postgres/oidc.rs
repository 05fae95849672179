//! The OpenID Connect provider's records in PostgreSQL: the shared SQL of `store::shared::oidc`.

use super::PostgresStore;

crate::store::shared::oidc::oidc_store!(PostgresStore);
