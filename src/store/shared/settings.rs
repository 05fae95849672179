//! [`SettingsStore`](crate::store::SettingsStore) for both SQL backends: insert-if-absent, then read,
//! so racing instances agree on one value; plain reads and replacing writes.

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

            async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)
            }

            async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }
        }
    };
}

pub(crate) use settings_store;
