//! [`OidcStore`](crate::store::OidcStore) for both SQL backends: registered clients, codes and tokens (by
//! hash), consents and signing keys. Redeeming a code or refresh token is a conditional `UPDATE` and the
//! inserts of what it was exchanged for, in one transaction: of two requests racing with the same code
//! exactly one wins, and the loser's replay revokes tokens that already exist.

/// Inserts a [`GrantToken`](crate::domain::oidc::GrantToken) with `$executor` (the pool or a transaction).
macro_rules! insert_token {
    ($executor:expr, $token:expr) => {{
        let token: &GrantToken = $token;
        sqlx::query(&format!(
            "INSERT INTO oidc_tokens ({TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&token.token_hash.0)
        .bind(token.kind.as_str())
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(&token.user_id.0)
        .bind(token.session_id.as_ref().map(|s| s.0.clone()))
        .bind(&token.scope)
        .bind(unix(token.auth_time))
        .bind(unix(token.created_at))
        .bind(unix(token.expires_at))
        .bind(token.used_at.map(unix))
        .bind(&token.redirect_uri)
        .bind(&token.nonce)
        .bind(&token.code_challenge)
        .execute($executor)
        .await
        .map_err(db_error)?;
    }};
}

pub(crate) use insert_token;

macro_rules! oidc_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use time::OffsetDateTime;

        use crate::domain::oidc::{
            ClientSecret, ClientSource, Consent, GrantToken, GrantTokenKind, OidcClient, SigningAlgorithm,
            SigningKeyRecord,
        };
        use crate::domain::{Role, Session, SessionId, TokenHash, UserId};
        use crate::store::rows::{SESSION_COLUMNS, db_error, session_from_row};
        use crate::store::shared::oidc::insert_token;
        use crate::store::{OidcStore, StoreError, StoreResult, from_unix, unix};

        const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
             first_party, allowed_roles, created_at";
        const TOKEN_COLUMNS: &str = "token_hash, kind, grant_id, client_id, user_id, session_id, scope, auth_time, \
             created_at, expires_at, used_at, redirect_uri, nonce, code_challenge";
        const KEY_COLUMNS: &str = "kid, algorithm, private_pkcs8, public_jwk, created_at, retired_at";

        fn corrupt(what: &str) -> StoreError {
            StoreError::Database(format!("stored {what} is invalid"))
        }

        fn json_list(raw: &str) -> StoreResult<Vec<String>> {
            serde_json::from_str(raw).map_err(|_| corrupt("list"))
        }

        fn to_json(list: &[String]) -> String {
            serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
        }

        fn client_from_row<R: Row>(row: &R) -> StoreResult<OidcClient>
        where
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'a> &'a str: sqlx::ColumnIndex<R>,
        {
            let get = |e: sqlx::Error| StoreError::Database(e.to_string());
            let secret: Option<String> = row.try_get("secret_hash").map_err(get)?;
            let roles = json_list(&row.try_get::<String, _>("allowed_roles").map_err(get)?)?
                .iter()
                .map(|r| Role::parse(r).map_err(|_| corrupt("role")))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(OidcClient {
                client_id: row.try_get("client_id").map_err(get)?,
                name: row.try_get("name").map_err(get)?,
                secret: secret.map_or(ClientSecret::None, |hash| ClientSecret::Sha256(TokenHash(hash))),
                redirect_uris: json_list(&row.try_get::<String, _>("redirect_uris").map_err(get)?)?,
                post_logout_redirect_uris: json_list(
                    &row.try_get::<String, _>("post_logout_redirect_uris").map_err(get)?,
                )?,
                first_party: row.try_get("first_party").map_err(get)?,
                allowed_roles: roles,
                source: ClientSource::Database,
                created_at: Some(from_unix(row.try_get("created_at").map_err(get)?)),
            })
        }

        fn token_from_row<R: Row>(row: &R) -> StoreResult<GrantToken>
        where
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'a> &'a str: sqlx::ColumnIndex<R>,
        {
            let get = |e: sqlx::Error| StoreError::Database(e.to_string());
            let kind: String = row.try_get("kind").map_err(get)?;
            let session: Option<String> = row.try_get("session_id").map_err(get)?;
            let used_at: Option<i64> = row.try_get("used_at").map_err(get)?;
            Ok(GrantToken {
                token_hash: TokenHash(row.try_get("token_hash").map_err(get)?),
                kind: GrantTokenKind::parse(&kind).ok_or_else(|| corrupt("token kind"))?,
                grant_id: row.try_get("grant_id").map_err(get)?,
                client_id: row.try_get("client_id").map_err(get)?,
                user_id: UserId(row.try_get("user_id").map_err(get)?),
                session_id: session.map(SessionId),
                scope: row.try_get("scope").map_err(get)?,
                auth_time: from_unix(row.try_get("auth_time").map_err(get)?),
                created_at: from_unix(row.try_get("created_at").map_err(get)?),
                expires_at: from_unix(row.try_get("expires_at").map_err(get)?),
                used_at: used_at.map(from_unix),
                redirect_uri: row.try_get("redirect_uri").map_err(get)?,
                nonce: row.try_get("nonce").map_err(get)?,
                code_challenge: row.try_get("code_challenge").map_err(get)?,
            })
        }

        fn key_from_row<R: Row>(row: &R) -> StoreResult<SigningKeyRecord>
        where
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'a> &'a str: sqlx::ColumnIndex<R>,
        {
            let get = |e: sqlx::Error| StoreError::Database(e.to_string());
            let algorithm: String = row.try_get("algorithm").map_err(get)?;
            let retired: Option<i64> = row.try_get("retired_at").map_err(get)?;
            Ok(SigningKeyRecord {
                kid: row.try_get("kid").map_err(get)?,
                algorithm: SigningAlgorithm::parse(&algorithm).map_err(|_| corrupt("signing algorithm"))?,
                private_pkcs8: row.try_get("private_pkcs8").map_err(get)?,
                public_jwk: row.try_get("public_jwk").map_err(get)?,
                created_at: from_unix(row.try_get("created_at").map_err(get)?),
                retired_at: retired.map(from_unix),
            })
        }

        #[async_trait]
        impl OidcStore for $store {
            async fn create_oidc_client(&self, client: &OidcClient, now: OffsetDateTime) -> StoreResult<()> {
                let secret = match &client.secret {
                    ClientSecret::None => None,
                    ClientSecret::Sha256(hash) => Some(hash.0.clone()),
                    // Chosen secrets live in the config file only; the CLI always generates one.
                    ClientSecret::Phc(_) => return Err(StoreError::Database("only generated secrets are stored".into())),
                };
                let roles: Vec<String> = client.allowed_roles.iter().map(|r| r.as_str().to_owned()).collect();
                sqlx::query(&format!(
                    "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&client.client_id)
                .bind(&client.name)
                .bind(secret)
                .bind(to_json(&client.redirect_uris))
                .bind(to_json(&client.post_logout_redirect_uris))
                .bind(client.first_party)
                .bind(to_json(&roles))
                .bind(unix(now))
                .execute(&self.pool)
                .await
                .map_err(|e| match db_error(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("client_id"),
                    other => other,
                })?;
                Ok(())
            }

            async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<OidcClient>> {
                let row = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE client_id = $1"))
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(client_from_row).transpose()
            }

            async fn list_oidc_clients(&self) -> StoreResult<Vec<OidcClient>> {
                let rows = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY client_id"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter().map(client_from_row).collect()
            }

            async fn delete_oidc_client(&self, client_id: &str) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                for table in ["oidc_tokens", "oidc_consents"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                let deleted = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                tx.commit().await.map_err(db_error)?;
                Ok(deleted > 0)
            }

            async fn create_grant_token(&self, token: &GrantToken) -> StoreResult<()> {
                insert_token!(&self.pool, token);
                Ok(())
            }

            async fn grant_token(&self, kind: GrantTokenKind, hash: &TokenHash) -> StoreResult<Option<GrantToken>> {
                let row = sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM oidc_tokens WHERE token_hash = $1 AND kind = $2"
                ))
                .bind(&hash.0)
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.as_ref().map(token_from_row).transpose()
            }

            async fn redeem_grant_token(
                &self,
                kind: GrantTokenKind,
                hash: &TokenHash,
                now: OffsetDateTime,
                issued: &[GrantToken],
            ) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let used = sqlx::query(
                    "UPDATE oidc_tokens SET used_at = $3 WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL",
                )
                .bind(&hash.0)
                .bind(kind.as_str())
                .bind(unix(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
                if used == 0 {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(false);
                }
                for token in issued {
                    insert_token!(&mut *tx, token);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn grant_session(&self, session_id: &SessionId) -> StoreResult<Option<Session>> {
                let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1"))
                    .bind(&session_id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn revoke_grant(&self, grant_id: &str) -> StoreResult<u64> {
                // Code rows stay (used) until they expire, so a third use is still recognised as a replay.
                let result = sqlx::query("DELETE FROM oidc_tokens WHERE grant_id = $1 AND kind <> 'code'")
                    .bind(grant_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn revoke_session_grants(&self, session_id: &SessionId) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM oidc_tokens WHERE session_id = $1 AND kind <> 'code'")
                    .bind(&session_id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn move_session_grants(&self, from: &SessionId, to: &SessionId) -> StoreResult<u64> {
                let result = sqlx::query("UPDATE oidc_tokens SET session_id = $2 WHERE session_id = $1")
                    .bind(&from.0)
                    .bind(&to.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn delete_expired_grant_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM oidc_tokens WHERE expires_at <= $1")
                    .bind(unix(before))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn consent(&self, user_id: &UserId, client_id: &str) -> StoreResult<Option<Consent>> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT scope, granted_at FROM oidc_consents WHERE user_id = $1 AND client_id = $2",
                )
                .bind(&user_id.0)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(|(scope, granted_at)| Consent {
                    user_id: user_id.clone(),
                    client_id: client_id.to_owned(),
                    scope,
                    granted_at: from_unix(granted_at),
                }))
            }

            async fn save_consent(&self, consent: &Consent) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO oidc_consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                )
                .bind(&consent.user_id.0)
                .bind(&consent.client_id)
                .bind(&consent.scope)
                .bind(unix(consent.granted_at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM oidc_signing_keys ORDER BY created_at DESC, kid DESC"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn add_signing_key(&self, key: &SigningKeyRecord, replaces: Option<&str>) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                // Retire exactly the key the caller saw as current: if another instance rotated meanwhile,
                // nothing matches and this rotation gives way instead of retiring the newcomer.
                let retired = sqlx::query(
                    "UPDATE oidc_signing_keys SET retired_at = $1, is_current = NULL WHERE retired_at IS NULL AND kid = $2",
                )
                .bind(unix(key.created_at))
                .bind(replaces.unwrap_or(""))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
                if replaces.is_some() && retired == 0 {
                    return Err(StoreError::Conflict("value"));
                }
                sqlx::query(&format!(
                    "INSERT INTO oidc_signing_keys ({KEY_COLUMNS}, is_current) VALUES ($1, $2, $3, $4, $5, NULL, TRUE)"
                ))
                .bind(&key.kid)
                .bind(key.algorithm.as_str())
                .bind(&key.private_pkcs8)
                .bind(&key.public_jwk)
                .bind(unix(key.created_at))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn delete_signing_keys_retired_before(&self, before: OffsetDateTime) -> StoreResult<u64> {
                let result = sqlx::query("DELETE FROM oidc_signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
                    .bind(unix(before))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }
        }
    };
}

pub(crate) use oidc_store;
