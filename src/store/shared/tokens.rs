//! [`TokenStore`](crate::store::TokenStore) for both SQL backends. Consuming is a single
//! `DELETE ... RETURNING`, so a token is used at most once even when two requests race.

macro_rules! token_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use time::OffsetDateTime;

        use crate::domain::TokenHash;
        use crate::store::rows::db_error;
        use crate::store::{OneTimeToken, StoreResult, TokenStore, from_unix, unix};

        #[async_trait]
        impl TokenStore for $store {
            async fn create_one_time_token(&self, token: &OneTimeToken) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO one_time_tokens (token_hash, purpose, subject, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.token_hash.0)
                .bind(&token.purpose)
                .bind(&token.subject)
                .bind(unix(token.created_at))
                .bind(unix(token.expires_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn one_time_token_is_valid(&self, purpose: &str, hash: &TokenHash, now: OffsetDateTime) -> StoreResult<bool> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3",
                )
                .bind(&hash.0)
                .bind(purpose)
                .bind(unix(now))
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(count > 0)
            }

            async fn consume_one_time_token(
                &self,
                purpose: &str,
                hash: &TokenHash,
                now: OffsetDateTime,
            ) -> StoreResult<Option<OneTimeToken>> {
                let row: Option<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
                    "DELETE FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 \
                     RETURNING token_hash, purpose, subject, created_at, expires_at",
                )
                .bind(&hash.0)
                .bind(purpose)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row
                    .map(|(token_hash, purpose, subject, created, expires)| OneTimeToken {
                        token_hash: TokenHash(token_hash),
                        purpose,
                        subject,
                        created_at: from_unix(created),
                        expires_at: from_unix(expires),
                    })
                    .filter(|token| token.expires_at > now))
            }

            async fn delete_expired_one_time_tokens(&self, now: OffsetDateTime) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM one_time_tokens WHERE expires_at <= $1")
                    .bind(unix(now))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }
        }
    };
}

pub(crate) use token_store;
