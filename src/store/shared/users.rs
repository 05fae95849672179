//! [`UserStore`](crate::store::UserStore) for both SQL backends: users and their roles. Creating a user
//! is `AccountStore::create_account` (one insert for every kind of account); roles are replaced with
//! `accounts::replace_roles`.

macro_rules! user_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use time::OffsetDateTime;

        use super::USER_COLUMNS;
        use crate::domain::{NewUser, Role, User, UserId};
        use crate::store::rows::{db_error, found, user_from_row};
        use crate::store::{StoreResult, UserStore, unix};

        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User> {
                crate::store::AccountStore::create_account(self, user, now).await
            }

            async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
                let row = sqlx::query(&sql).bind(&id.0).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>> {
                let login = login.trim().to_lowercase();
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1 OR u.email = $1 ORDER BY u.username = $1 DESC LIMIT 1"
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
                let result = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                found(result.rows_affected())
            }

            async fn set_roles(&self, id: &UserId, roles: &[Role], now: OffsetDateTime) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let result = sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                found(result.rows_affected())?;
                super::accounts::replace_roles(&mut tx, id, roles).await?;
                tx.commit().await.map_err(db_error)
            }

            async fn set_disabled(&self, id: &UserId, disabled: bool, now: OffsetDateTime) -> StoreResult<()> {
                let result = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
                    .bind(disabled)
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                found(result.rows_affected())
            }

            async fn delete_user(&self, id: &UserId) -> StoreResult<()> {
                let result =
                    sqlx::query("DELETE FROM users WHERE id = $1").bind(&id.0).execute(&self.pool).await.map_err(db_error)?;
                found(result.rows_affected())
            }

            async fn record_login(&self, id: &UserId, now: OffsetDateTime) -> StoreResult<()> {
                let result = sqlx::query("UPDATE users SET last_login_at = $1, login_count = login_count + 1 WHERE id = $2")
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                found(result.rows_affected())
            }
        }
    };
}

pub(crate) use user_store;
