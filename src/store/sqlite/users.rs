//! Users and their roles in SQLite.

use async_trait::async_trait;
use sqlx::Acquire;
use time::OffsetDateTime;

use super::{SqliteStore, USER_COLUMNS};
use crate::domain::user::normalize_roles;
use crate::domain::{NewUser, Role, User, UserId};
use crate::store::rows::{db_error, found, user_from_row};
use crate::store::{StoreResult, UserStore, unix};

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User> {
        crate::store::AccountStore::create_account(self, user, now).await
    }

    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?");
        let row = sqlx::query(&sql).bind(&id.0).fetch_optional(&self.pool).await.map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>> {
        let login = login.trim().to_lowercase();
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1 OR u.email = ?1 ORDER BY u.username = ?1 DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(&login).fetch_optional(&self.pool).await.map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&self.pool).await.map_err(db_error)
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str, now: OffsetDateTime) -> StoreResult<()> {
        let result = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(unix(now))
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        found(result.rows_affected())
    }

    async fn set_roles(&self, id: &UserId, roles: &[Role], now: OffsetDateTime) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let mut tx = conn.begin().await.map_err(db_error)?;
        let result = sqlx::query("UPDATE users SET updated_at = ? WHERE id = ?")
            .bind(unix(now))
            .bind(&id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        found(result.rows_affected())?;
        sqlx::query("DELETE FROM user_roles WHERE user_id = ?")
            .bind(&id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_roles(&mut tx, id, roles.to_vec()).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn set_disabled(&self, id: &UserId, disabled: bool, now: OffsetDateTime) -> StoreResult<()> {
        let result = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
            .bind(i64::from(disabled))
            .bind(unix(now))
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        found(result.rows_affected())
    }

    async fn delete_user(&self, id: &UserId) -> StoreResult<()> {
        let result =
            sqlx::query("DELETE FROM users WHERE id = ?").bind(&id.0).execute(&self.pool).await.map_err(db_error)?;
        found(result.rows_affected())
    }

    async fn record_login(&self, id: &UserId, now: OffsetDateTime) -> StoreResult<()> {
        let result = sqlx::query("UPDATE users SET last_login_at = ?, login_count = login_count + 1 WHERE id = ?")
            .bind(unix(now))
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        found(result.rows_affected())
    }
}

/// Adds a user's roles (sorted, without duplicates) inside the caller's transaction.
async fn insert_roles(tx: &mut sqlx::SqliteConnection, id: &UserId, roles: Vec<Role>) -> StoreResult<()> {
    for role in normalize_roles(roles) {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES (?, ?)")
            .bind(&id.0)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
