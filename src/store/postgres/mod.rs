//! The PostgreSQL backend, for several Gatehouse instances sharing one database. The same tables and rules as
//! the SQLite backend (see `migrations/postgres`), one file per concern, sharing the row mapping in this file.
//! Every instance applies pending migrations at start; sqlx serialises that with an advisory lock, so
//! instances starting together do not race.

mod audit;
mod notify;
mod sessions;
mod settings;
mod throttle;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration as StdDuration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::{Store, StoreError, StoreResult, from_unix, redact_url};
use crate::domain::user::normalize_roles;
use crate::domain::{Email, Role, User, UserId, Username};

/// Migrations compiled into the binary; applied at start and by `gatehouse migrate`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per instance. Sign-ins and the once-a-second session checks are short queries; this is enough
/// for thousands of requests per second per instance and keeps many instances under PostgreSQL's default
/// `max_connections` of 100.
const MAX_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// For the session-event listener's own connection.
    options: PgConnectOptions,
}

impl PostgresStore {
    /// Connects to the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("'{}' is not a valid PostgreSQL URL", redact_url(url)))?
            .application_name("gatehouse");
        Self::open_with(options, &redact_url(url)).await
    }

    /// Connects with prepared options (tests use this to put each test in a schema of its own).
    pub async fn open_with(options: PgConnectOptions, shown_as: &str) -> anyhow::Result<Self> {
        let listener_options = options.clone();
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            // A database that stopped answering must fail requests quickly (closed), not hang them.
            .acquire_timeout(StdDuration::from_secs(3))
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("while connecting to the PostgreSQL database {shown_as}"))?;
        MIGRATOR.run(&pool).await.context("while applying database migrations")?;
        Ok(Self { pool, options: listener_options })
    }

    /// The connection pool (for tests and for `gatehouse db copy`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn session_events(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<super::SessionEvent>>> {
        notify::listen(self.options.clone()).await.map(Some)
    }
}

/// Maps a driver error; unique violations become [`StoreError::Conflict`] naming the column.
fn db_error(err: sqlx::Error) -> StoreError {
    if let Some(db) = err.as_database_error()
        && db.is_unique_violation()
    {
        return match db.constraint() {
            Some("users_username_key") => StoreError::Conflict("username"),
            Some("users_email_key") => StoreError::Conflict("email"),
            _ => StoreError::Conflict("value"),
        };
    }
    StoreError::Database(err.to_string())
}

/// Columns of `users` plus the roles folded into one comma-separated column.
const USER_COLUMNS: &str = "u.id, u.username, u.email, u.display_name, u.password_hash, u.disabled, u.created_at, \
     u.updated_at, u.last_login_at, u.login_count, \
     (SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id) AS roles";

fn user_from_row(row: &PgRow) -> StoreResult<User> {
    let get_err = |e: sqlx::Error| StoreError::Database(e.to_string());
    let corrupt =
        |what: &str, e: crate::domain::InvalidInput| StoreError::Database(format!("stored {what} is invalid: {e}"));
    let username: String = row.try_get("username").map_err(get_err)?;
    let email: Option<String> = row.try_get("email").map_err(get_err)?;
    let roles: Option<String> = row.try_get("roles").map_err(get_err)?;
    let roles = roles
        .unwrap_or_default()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| Role::parse(r).map_err(|e| corrupt("role", e)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(User {
        id: UserId(row.try_get("id").map_err(get_err)?),
        username: Username::parse(&username).map_err(|e| corrupt("username", e))?,
        email: email.map(|e| Email::parse(&e)).transpose().map_err(|e| corrupt("email", e))?,
        display_name: row.try_get("display_name").map_err(get_err)?,
        roles: normalize_roles(roles),
        password_hash: row.try_get("password_hash").map_err(get_err)?,
        disabled: row.try_get("disabled").map_err(get_err)?,
        created_at: from_unix(row.try_get("created_at").map_err(get_err)?),
        updated_at: from_unix(row.try_get("updated_at").map_err(get_err)?),
        last_login_at: row.try_get::<Option<i64>, _>("last_login_at").map_err(get_err)?.map(from_unix),
        login_count: row.try_get("login_count").map_err(get_err)?,
    })
}

/// Turns "no row was affected" into [`StoreError::NotFound`].
fn found(rows: u64) -> StoreResult<()> {
    if rows == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}
