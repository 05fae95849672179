//! The OpenID Connect provider's records in SQLite: the shared SQL of `store::shared::oidc`.

use super::SqliteStore;

crate::store::shared::oidc::oidc_store!(SqliteStore);
