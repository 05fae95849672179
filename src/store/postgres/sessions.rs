//! Sessions in PostgreSQL. Lookups are by the token's hash, which is the unique index the proxy path hits.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{PostgresStore, USER_COLUMNS};
use crate::domain::{NewSession, Session, SessionId, TokenHash, User, UserId};
use crate::store::rows::{SESSION_COLUMNS, db_error, session_from_row, user_from_row};
use crate::store::{SessionStore, StoreResult, unix};

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, idle_timeout_secs, \
             remember_me, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&session.id.0)
        .bind(&session.token_hash.0)
        .bind(&session.user_id.0)
        .bind(unix(session.created_at))
        .bind(unix(session.created_at))
        .bind(unix(session.expires_at))
        .bind(session.idle_timeout.whole_seconds())
        .bind(session.remember_me)
        .bind(&session.client_ip)
        .bind(&session.user_agent)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        );
        let row = sqlx::query(&sql).bind(&hash.0).fetch_optional(&self.pool).await.map_err(db_error)?;
        match row {
            Some(row) => Ok(Some((session_from_row(&row)?, user_from_row(&row)?))),
            None => Ok(None),
        }
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3")
            .bind(unix(now))
            .bind(&id.0)
            .bind(unix(now))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        let ids = self.delete_and_notify("DELETE FROM sessions WHERE id = $1 RETURNING id", &id.0).await?;
        Ok(!ids.is_empty())
    }

    async fn delete_user_sessions(&self, user_id: &UserId) -> StoreResult<Vec<SessionId>> {
        let ids = self.delete_and_notify("DELETE FROM sessions WHERE user_id = $1 RETURNING id", &user_id.0).await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn sessions_for_user(&self, user_id: &UserId) -> StoreResult<Vec<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 ORDER BY s.last_seen_at DESC");
        let rows = sqlx::query(&sql).bind(&user_id.0).fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let result =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at + idle_timeout_secs <= $1")
                .bind(unix(now))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(result.rows_affected())
    }

    async fn count_active_sessions(&self, now: OffsetDateTime) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE expires_at > $1 AND last_seen_at + idle_timeout_secs > $1",
        )
        .bind(unix(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }
}

impl PostgresStore {
    /// Runs a `DELETE ... RETURNING id` on sessions and notifies the other instances in the same transaction.
    async fn delete_and_notify(&self, sql: &str, key: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let ids: Vec<String> = sqlx::query_scalar(sql).bind(key).fetch_all(&mut *tx).await.map_err(db_error)?;
        super::notify::notify_ended(&mut tx, &ids).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ids)
    }
}
