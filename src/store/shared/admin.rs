//! [`AdminStore`](crate::store::AdminStore) for both SQL backends: the admin console's user search (one page
//! at a time, with the total), the last-administrator count, and the dashboard's per-day figures.

macro_rules! admin_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::{QueryBuilder, Row};
        use time::OffsetDateTime;

        use super::USER_COLUMNS;
        use crate::domain::{Email, Role, User, UserId};
        use crate::store::rows::{db_error, found, user_from_row};
        use crate::store::{AdminStore, DailyCount, StoreResult, UserQuery, UserStatus, unix};

        /// Appends the `WHERE` clause of a user query (shared by the page and its count).
        fn push_user_filters(query: &mut QueryBuilder<'_, $db>, filter: &UserQuery) {
            query.push(" WHERE 1 = 1");
            if let Some(text) = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                // The text is matched literally: LIKE's wildcards in it are escaped.
                let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let pattern = format!("%{escaped}%");
                query
                    .push(" AND (u.username LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR u.email LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR lower(u.display_name) LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
            if let Some(role) = &filter.role {
                // An IN over the role index, not a per-row EXISTS: counting one role's holders among 100,000
                // users then reads only their rows.
                query
                    .push(" AND u.id IN (SELECT r.user_id FROM user_roles r WHERE r.role = ")
                    .push_bind(role.as_str().to_owned())
                    .push(")");
            }
            match filter.status {
                Some(UserStatus::Active) => query.push(" AND u.disabled = FALSE AND u.pending_until IS NULL"),
                Some(UserStatus::Disabled) => query.push(" AND u.disabled = TRUE"),
                Some(UserStatus::Pending) => query.push(" AND u.disabled = FALSE AND u.pending_until IS NOT NULL"),
                None => query.push(""),
            };
        }

        #[async_trait]
        impl AdminStore for $store {
            async fn search_users(&self, filter: &UserQuery) -> StoreResult<(Vec<User>, i64)> {
                let mut count: QueryBuilder<$db> = QueryBuilder::new("SELECT count(*) FROM users u");
                push_user_filters(&mut count, filter);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await.map_err(db_error)?;

                let mut page: QueryBuilder<$db> = QueryBuilder::new(format!("SELECT {USER_COLUMNS} FROM users u"));
                push_user_filters(&mut page, filter);
                let limit = if filter.limit > 0 { filter.limit } else { 50 };
                page.push(" ORDER BY u.username LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(filter.offset.max(0));
                let rows = page.build().fetch_all(&self.pool).await.map_err(db_error)?;
                let users = rows.iter().map(user_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok((users, total))
            }

            async fn count_enabled_with_role(&self, role: &Role) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT count(*) FROM users u JOIN user_roles r ON r.user_id = u.id \
                     WHERE r.role = $1 AND u.disabled = FALSE AND u.pending_until IS NULL",
                )
                .bind(role.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)
            }

            async fn known_roles(&self) -> StoreResult<Vec<String>> {
                sqlx::query_scalar("SELECT DISTINCT role FROM user_roles ORDER BY role")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)
            }

            async fn daily_new_users(&self, since: OffsetDateTime) -> StoreResult<Vec<DailyCount>> {
                let rows = sqlx::query(
                    "SELECT created_at / 86400 AS day, count(*) AS n FROM users WHERE created_at >= $1 \
                     GROUP BY created_at / 86400 ORDER BY day",
                )
                .bind(unix(since))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(DailyCount {
                            day: row.try_get("day").map_err(db_error)?,
                            kind: None,
                            count: row.try_get("n").map_err(db_error)?,
                        })
                    })
                    .collect()
            }

            async fn set_profile(
                &self,
                id: &UserId,
                display_name: &str,
                email: Option<&Email>,
                now: OffsetDateTime,
            ) -> StoreResult<()> {
                // An unchanged address keeps its verified flag; a new one set by an administrator counts as proven.
                let result = sqlx::query(
                    "UPDATE users SET display_name = $1, \
                     email_verified = CASE WHEN email IS NOT DISTINCT FROM $2 THEN email_verified ELSE ($2 IS NOT NULL) END, \
                     email = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(display_name)
                .bind(email.map(|e| e.as_str()))
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

pub(crate) use admin_store;
