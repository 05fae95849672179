//! [`AccountStore`](crate::store::AccountStore) for both SQL backends: registrations, invitations, email
//! challenges and imports, and the one user insert and role replacement every kind of account uses.

macro_rules! account_store {
    ($store:ty, $connection:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use time::OffsetDateTime;

        use super::USER_COLUMNS;
        use crate::domain::user::normalize_roles;
        use crate::domain::{ChallengePurpose, Email, EmailChallenge, Invite, NewUser, Role, TokenHash, User, UserId};
        use crate::store::rows::{db_error, found, user_from_row};
        use crate::store::{
            AccountStore, ImportCounts, OneTimeToken, StoreError, StoreResult, UserStore, from_unix, unix,
        };

        const INVITE_COLUMNS: &str = "id, token_hash, email, roles, invited_by, created_at, expires_at";
        const CHALLENGE_COLUMNS: &str =
            "id, user_id, purpose, email, code_hash, link_hash, attempts, created_at, expires_at";

        fn invite_from_row<R: Row>(row: &R) -> StoreResult<Invite>
        where
            for<'r> &'r str: sqlx::ColumnIndex<R>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            let corrupt = |what: &str| StoreError::Database(format!("stored invitation has an invalid {what}"));
            let email: String = row.try_get("email").map_err(db_error)?;
            let roles: String = row.try_get("roles").map_err(db_error)?;
            Ok(Invite {
                id: row.try_get("id").map_err(db_error)?,
                token_hash: TokenHash(row.try_get("token_hash").map_err(db_error)?),
                email: Email::from_stored(email),
                roles: roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(|r| Role::parse(r).map_err(|_| corrupt("role")))
                    .collect::<StoreResult<Vec<_>>>()?,
                invited_by: row.try_get("invited_by").map_err(db_error)?,
                created_at: from_unix(row.try_get("created_at").map_err(db_error)?),
                expires_at: from_unix(row.try_get("expires_at").map_err(db_error)?),
            })
        }

        fn challenge_from_row<R: Row>(row: &R) -> StoreResult<EmailChallenge>
        where
            for<'r> &'r str: sqlx::ColumnIndex<R>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            let corrupt = |what: &str| StoreError::Database(format!("stored email challenge has an invalid {what}"));
            let purpose: String = row.try_get("purpose").map_err(db_error)?;
            let email: String = row.try_get("email").map_err(db_error)?;
            Ok(EmailChallenge {
                id: row.try_get("id").map_err(db_error)?,
                user_id: row.try_get::<Option<String>, _>("user_id").map_err(db_error)?.map(UserId),
                purpose: ChallengePurpose::parse(&purpose).ok_or_else(|| corrupt("purpose"))?,
                email: Email::from_stored(email),
                code_hash: row.try_get("code_hash").map_err(db_error)?,
                link_hash: TokenHash(row.try_get("link_hash").map_err(db_error)?),
                attempts: row.try_get("attempts").map_err(db_error)?,
                created_at: from_unix(row.try_get("created_at").map_err(db_error)?),
                expires_at: from_unix(row.try_get("expires_at").map_err(db_error)?),
            })
        }

        fn roles_text(roles: &[Role]) -> String {
            roles.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
        }

        /// Replaces a user's roles (sorted, without duplicates) inside the caller's transaction.
        pub(in crate::store) async fn replace_roles(
            conn: &mut $connection,
            id: &UserId,
            roles: &[Role],
        ) -> StoreResult<()> {
            sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                .bind(&id.0)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            for role in normalize_roles(roles.to_vec()) {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                    .bind(&id.0)
                    .bind(role.as_str())
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
            }
            Ok(())
        }

        async fn insert_user(conn: &mut $connection, user: &NewUser, now: OffsetDateTime) -> StoreResult<UserId> {
            let id = UserId::generate();
            sqlx::query(
                "INSERT INTO users (id, username, email, display_name, password_hash, disabled, email_verified, \
                 pending_until, created_at, updated_at, login_count) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
            )
            .bind(&id.0)
            .bind(user.username.as_str())
            .bind(user.email.as_ref().map(|e| e.as_str()))
            .bind(&user.display_name)
            .bind(&user.password_hash)
            .bind(user.disabled)
            .bind(user.email_verified)
            .bind(user.pending_until.map(unix))
            .bind(unix(now))
            .bind(unix(now))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
            replace_roles(conn, &id, &user.roles).await?;
            Ok(id)
        }

        #[async_trait]
        impl AccountStore for $store {
            async fn create_account(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let id = insert_user(&mut tx, &user, now).await?;
                tx.commit().await.map_err(db_error)?;
                self.user_by_id(&id).await?.ok_or(StoreError::NotFound)
            }

            async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1");
                let row = sqlx::query(&sql).bind(email.as_str()).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_display_name(&self, id: &UserId, name: &str, now: OffsetDateTime) -> StoreResult<()> {
                let result = sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
                    .bind(name)
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                found(result.rows_affected())
            }

            async fn set_verified_email(&self, id: &UserId, email: &Email, now: OffsetDateTime) -> StoreResult<()> {
                let result =
                    sqlx::query("UPDATE users SET email = $1, email_verified = TRUE, updated_at = $2 WHERE id = $3")
                        .bind(email.as_str())
                        .bind(unix(now))
                        .bind(&id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                found(result.rows_affected())
            }

            async fn activate_user(&self, id: &UserId, roles: &[Role], now: OffsetDateTime) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let result = sqlx::query(
                    "UPDATE users SET email_verified = TRUE, pending_until = NULL, updated_at = $1 WHERE id = $2",
                )
                .bind(unix(now))
                .bind(&id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                found(result.rows_affected())?;
                if !roles.is_empty() {
                    replace_roles(&mut tx, id, roles).await?;
                }
                tx.commit().await.map_err(db_error)
            }

            async fn import_users(
                &self,
                creates: &[NewUser],
                updates: &[(UserId, NewUser)],
                now: OffsetDateTime,
                progress: &(dyn Fn(usize) + Send + Sync),
            ) -> StoreResult<ImportCounts> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let mut written = 0;
                for user in creates {
                    insert_user(&mut tx, user, now).await?;
                    written += 1;
                    if written % 500 == 0 {
                        progress(written);
                    }
                }
                for (id, user) in updates {
                    let result = sqlx::query(
                        "UPDATE users SET email = $1, display_name = $2, password_hash = COALESCE($3, password_hash), \
                         email_verified = $4, disabled = $5, updated_at = $6 WHERE id = $7",
                    )
                    .bind(user.email.as_ref().map(|e| e.as_str()))
                    .bind(&user.display_name)
                    .bind(&user.password_hash)
                    .bind(user.email_verified)
                    .bind(user.disabled)
                    .bind(unix(now))
                    .bind(&id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    found(result.rows_affected())?;
                    replace_roles(&mut tx, id, &user.roles).await?;
                    written += 1;
                    if written % 500 == 0 {
                        progress(written);
                    }
                }
                tx.commit().await.map_err(db_error)?;
                progress(written);
                Ok(ImportCounts { created: creates.len(), updated: updates.len() })
            }

            async fn create_invite(&self, invite: &Invite) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO invites (id, token_hash, email, roles, invited_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&invite.id)
                .bind(&invite.token_hash.0)
                .bind(invite.email.as_str())
                .bind(roles_text(&invite.roles))
                .bind(&invite.invited_by)
                .bind(unix(invite.created_at))
                .bind(unix(invite.expires_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn invite_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Invite>> {
                let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = $1");
                let row = sqlx::query(&sql).bind(&hash.0).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(invite_from_row).transpose()
            }

            async fn take_invite(&self, hash: &TokenHash) -> StoreResult<Option<Invite>> {
                let sql = format!("DELETE FROM invites WHERE token_hash = $1 RETURNING {INVITE_COLUMNS}");
                let row = sqlx::query(&sql).bind(&hash.0).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(invite_from_row).transpose()
            }

            async fn list_invites(&self) -> StoreResult<Vec<Invite>> {
                let sql = format!("SELECT {INVITE_COLUMNS} FROM invites ORDER BY created_at DESC, id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter().map(invite_from_row).collect()
            }

            async fn revoke_invite(&self, id: &str) -> StoreResult<bool> {
                let result = sqlx::query("DELETE FROM invites WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn create_email_challenge(&self, challenge: &EmailChallenge) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                // One open challenge per account and purpose: a new message makes the older ones useless.
                sqlx::query("DELETE FROM email_challenges WHERE user_id = $1 AND purpose = $2")
                    .bind(challenge.user_id.as_ref().map(|u| u.0.as_str()))
                    .bind(challenge.purpose.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO email_challenges (id, user_id, purpose, email, code_hash, link_hash, attempts, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&challenge.id)
                .bind(challenge.user_id.as_ref().map(|u| u.0.as_str()))
                .bind(challenge.purpose.as_str())
                .bind(challenge.email.as_str())
                .bind(&challenge.code_hash)
                .bind(&challenge.link_hash.0)
                .bind(challenge.attempts)
                .bind(unix(challenge.created_at))
                .bind(unix(challenge.expires_at))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn email_challenge(&self, id: &str) -> StoreResult<Option<EmailChallenge>> {
                let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM email_challenges WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(challenge_from_row).transpose()
            }

            async fn email_challenge_by_link(&self, hash: &TokenHash) -> StoreResult<Option<EmailChallenge>> {
                let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM email_challenges WHERE link_hash = $1");
                let row = sqlx::query(&sql).bind(&hash.0).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(challenge_from_row).transpose()
            }

            async fn latest_email_challenge(
                &self,
                user_id: &UserId,
                purpose: ChallengePurpose,
            ) -> StoreResult<Option<EmailChallenge>> {
                let sql = format!(
                    "SELECT {CHALLENGE_COLUMNS} FROM email_challenges WHERE user_id = $1 AND purpose = $2 \
                     ORDER BY created_at DESC LIMIT 1"
                );
                let row = sqlx::query(&sql)
                    .bind(&user_id.0)
                    .bind(purpose.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(challenge_from_row).transpose()
            }

            async fn claim_code_attempt(&self, id: &str, now: OffsetDateTime) -> StoreResult<Option<EmailChallenge>> {
                // One statement: of any number of concurrent guesses, at most MAX_CODE_ATTEMPTS get a row.
                let sql = format!(
                    "UPDATE email_challenges SET attempts = attempts + 1 \
                     WHERE id = $1 AND attempts < $2 AND expires_at > $3 RETURNING {CHALLENGE_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(crate::domain::email_challenge::MAX_CODE_ATTEMPTS)
                    .bind(unix(now))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(challenge_from_row).transpose()
            }

            async fn take_email_challenge(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
                let result = sqlx::query("DELETE FROM email_challenges WHERE id = $1 AND expires_at > $2")
                    .bind(id)
                    .bind(unix(now))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn one_time_token(&self, purpose: &str, hash: &TokenHash) -> StoreResult<Option<OneTimeToken>> {
                let row: Option<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
                    "SELECT token_hash, purpose, subject, created_at, expires_at FROM one_time_tokens \
                     WHERE token_hash = $1 AND purpose = $2",
                )
                .bind(&hash.0)
                .bind(purpose)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(|(token_hash, purpose, subject, created, expires)| OneTimeToken {
                    token_hash: TokenHash(token_hash),
                    purpose,
                    subject,
                    created_at: from_unix(created),
                    expires_at: from_unix(expires),
                }))
            }

            async fn delete_one_time_tokens_for(&self, purpose: &str, subject: &str) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM one_time_tokens WHERE purpose = $1 AND subject = $2")
                    .bind(purpose)
                    .bind(subject)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn delete_expired_account_records(&self, now: OffsetDateTime) -> StoreResult<u64> {
                let mut swept = 0;
                for sql in [
                    "DELETE FROM email_challenges WHERE expires_at <= $1",
                    "DELETE FROM invites WHERE expires_at <= $1",
                    "DELETE FROM users WHERE pending_until IS NOT NULL AND pending_until <= $1",
                ] {
                    let result = sqlx::query(sql).bind(unix(now)).execute(&self.pool).await.map_err(db_error)?;
                    swept += result.rows_affected();
                }
                Ok(swept)
            }
        }
    };
}

pub(crate) use account_store;
