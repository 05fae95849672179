//! [`ThrottleStore`](crate::store::ThrottleStore) for both SQL backends, updated atomically with an
//! upsert so concurrent failures all count.

macro_rules! throttle_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use time::{Duration, OffsetDateTime};

        use crate::domain::ThrottleState;
        use crate::store::rows::db_error;
        use crate::store::{StoreResult, ThrottleStore, from_unix, unix};

        #[async_trait]
        impl ThrottleStore for $store {
            async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
                let row: Option<(i64, i64)> = sqlx::query_as("SELECT failures, last_failure_at FROM throttle WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(|(failures, at)| ThrottleState { failures, last_failure_at: from_unix(at) }))
            }

            async fn record_throttle_failure(
                &self,
                key: &str,
                now: OffsetDateTime,
                reset_after: Duration,
            ) -> StoreResult<ThrottleState> {
                let (failures, at): (i64, i64) = sqlx::query_as(
                    "INSERT INTO throttle (key, failures, last_failure_at) VALUES ($1, 1, $2) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN throttle.last_failure_at <= $3 THEN 1 ELSE throttle.failures + 1 END, \
                       last_failure_at = excluded.last_failure_at \
                     RETURNING failures, last_failure_at",
                )
                .bind(key)
                .bind(unix(now))
                .bind(unix(now - reset_after))
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(ThrottleState { failures, last_failure_at: from_unix(at) })
            }

            async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM throttle WHERE key = $1").bind(key).execute(&self.pool).await.map_err(db_error)?;
                Ok(())
            }

            async fn delete_stale_throttle(&self, before: OffsetDateTime) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM throttle WHERE last_failure_at < $1")
                    .bind(unix(before))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }
        }
    };
}

pub(crate) use throttle_store;
