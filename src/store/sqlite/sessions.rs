//! Sessions in SQLite. Lookups are by the token's hash, which is the unique index the proxy path hits.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{SqliteStore, USER_COLUMNS};
use crate::domain::{NewSession, Session, SessionId, TokenHash, User, UserId};
use crate::store::rows::{SESSION_COLUMNS, db_error, session_from_row, user_from_row};
use crate::store::{SessionStore, StoreResult, unix};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, idle_timeout_secs, \
             remember_me, client_ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.id.0)
        .bind(&session.token_hash.0)
        .bind(&session.user_id.0)
        .bind(unix(session.created_at))
        .bind(unix(session.created_at))
        .bind(unix(session.expires_at))
        .bind(session.idle_timeout.whole_seconds())
        .bind(i64::from(session.remember_me))
        .bind(&session.client_ip)
        .bind(&session.user_agent)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?"
        );
        let row = sqlx::query(&sql).bind(&hash.0).fetch_optional(&self.pool).await.map_err(db_error)?;
        match row {
            Some(row) => Ok(Some((session_from_row(&row)?, user_from_row(&row)?))),
            None => Ok(None),
        }
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?")
            .bind(unix(now))
            .bind(&id.0)
            .bind(unix(now))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        let result =
            sqlx::query("DELETE FROM sessions WHERE id = ?").bind(&id.0).execute(&self.pool).await.map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_user_sessions(&self, user_id: &UserId) -> StoreResult<Vec<SessionId>> {
        let ids: Vec<String> = sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ? RETURNING id")
            .bind(&user_id.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn sessions_for_user(&self, user_id: &UserId) -> StoreResult<Vec<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ? ORDER BY s.last_seen_at DESC");
        let rows = sqlx::query(&sql).bind(&user_id.0).fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // The record of ended sessions only needs to outlive the servers' next look at it.
        sqlx::query("DELETE FROM ended_sessions WHERE ended_at < ?")
            .bind(unix(now) - super::ended::KEEP_SECS)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        let result =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at + idle_timeout_secs <= ?1")
                .bind(unix(now))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(result.rows_affected())
    }

    async fn count_active_sessions(&self, now: OffsetDateTime) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE expires_at > ?1 AND last_seen_at + idle_timeout_secs > ?1",
        )
        .bind(unix(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }
}
