//! The PostgreSQL backend, for several Gatehouse instances sharing one database. The same tables and rules as
//! the SQLite backend (see `migrations/postgres`), one file per concern; rows are mapped by `store::rows`.
//! Every instance applies pending migrations at start; sqlx serialises that with an advisory lock, so
//! instances starting together do not race.

mod accounts;
mod admin;
mod audit;
mod notify;
mod oidc;
mod sessions;
mod settings;
mod throttle;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration as StdDuration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::rows::db_error;
use super::{Store, StoreResult, redact_url};

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
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            // A database that stopped answering must fail requests quickly (closed), not hang them.
            .acquire_timeout(StdDuration::from_secs(3))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("while connecting to the PostgreSQL database {}", redact_url(url)))?;
        MIGRATOR.run(&pool).await.context("while applying database migrations")?;
        Ok(Self { pool, options })
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

/// Columns of `users` plus the roles folded into one comma-separated column.
const USER_COLUMNS: &str = "u.id, u.username, u.email, u.display_name, u.password_hash, u.disabled, u.email_verified, \
     u.pending_until, u.created_at, \
     u.updated_at, u.last_login_at, u.login_count, \
     (SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r WHERE r.user_id = u.id) AS roles";
