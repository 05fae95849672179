//! The SQLite backend: one file per concern, rows mapped by `store::rows`. WAL mode lets sign-ins
//! write while the proxy path reads; a busy timeout absorbs the short write locks of concurrent instances of
//! the CLI (e.g. `gatehouse users add` while the server runs).

mod accounts;
mod admin;
mod audit;
mod ended;
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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::rows::db_error;
use super::{Store, StoreResult};

/// Migrations compiled into the binary; applied at start and by `gatehouse migrate`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("'{url}' is not a valid SQLite URL (expected sqlite://PATH)"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(StdDuration::from_secs(5));
        // An in-memory database exists once per connection, so it must live on exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_private_file(options.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .with_context(|| format!("while opening the SQLite database {url}"))?;
        MIGRATOR.run(&pool).await.context("while applying database migrations")?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn session_events(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<super::SessionEvent>>> {
        ended::listen(self.pool.clone()).await.map(Some)
    }
}

/// The database holds password hashes and signing keys: create it readable by its owner only. SQLite gives
/// its `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("could not create the database file {}", path.display())),
    }
}

/// Columns of `users` plus the roles folded into one comma-separated column.
const USER_COLUMNS: &str = "u.id, u.username, u.email, u.display_name, u.password_hash, u.disabled, u.email_verified, \
     u.pending_until, u.created_at, \
     u.updated_at, u.last_login_at, u.login_count, \
     (SELECT group_concat(r.role, ',') FROM user_roles r WHERE r.user_id = u.id) AS roles";
