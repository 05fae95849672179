//! [`SettingsStore`](crate::store::SettingsStore) for both SQL backends: insert-if-absent, then read,
//! so racing instances agree on one value.

macro_rules! settings_store {
    ($store:ty) => {
        use async_trait::async_trait;

        use crate::store::rows::db_error;
        use crate::store::{SettingsStore, StoreResult};

        #[async_trait]
        impl SettingsStore for $store {
            async fn setting_or_insert(&self, key: &str, value_if_absent: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value_if_absent)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)
            }
        }
    };
}

pub(crate) use settings_store;
