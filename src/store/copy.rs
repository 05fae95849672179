//! `gatehouse db copy`: moves an installation from one database to another (typically SQLite to PostgreSQL
//! when it outgrows one machine): users and roles, sessions (so nobody is signed out), the audit log, one-time
//! tokens, throttling counters and the keys in `settings` (so forms, cookies and assertions stay valid).
//!
//! Both ends are opened as Gatehouse stores first, which brings their schemas to the current version. The
//! target must be empty. Everything is written in one transaction on the target, the row counts are compared
//! inside it, and only then is it committed: a failure at any point leaves the target as it was.
//!
//! Rows are read and written through sqlx's `Any` driver with SQL both backends accept (`$n` placeholders);
//! flags are moved as integers and cast on the way in, because SQLite stores them as integers and
//! PostgreSQL as booleans.

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::redact_url;

/// How a column's values travel.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    OptionalText,
    Int,
    OptionalInt,
    /// Stored as 0/1 in SQLite and as BOOLEAN in PostgreSQL.
    Flag,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Rows are copied in this order (the audit log keeps its order, with new ids).
    order_by: &'static str,
}

use Kind::{Flag, Int, OptionalInt, OptionalText, Text};

/// In dependency order: users before the rows that reference them.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("username", Text),
            ("email", OptionalText),
            ("display_name", Text),
            ("password_hash", OptionalText),
            ("disabled", Flag),
            ("email_verified", Flag),
            ("pending_until", OptionalInt),
            ("created_at", Int),
            ("updated_at", Int),
            ("last_login_at", OptionalInt),
            ("login_count", Int),
        ],
        order_by: "id",
    },
    Table { name: "user_roles", columns: &[("user_id", Text), ("role", Text)], order_by: "user_id, role" },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("token_hash", Text),
            ("user_id", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
            ("idle_timeout_secs", Int),
            ("remember_me", Flag),
            ("client_ip", OptionalText),
            ("user_agent", OptionalText),
        ],
        order_by: "id",
    },
    Table {
        name: "audit_log",
        columns: &[
            ("at", Int),
            ("kind", Text),
            ("actor", OptionalText),
            ("subject", OptionalText),
            ("client_ip", OptionalText),
            ("user_agent", OptionalText),
            ("detail", OptionalText),
        ],
        order_by: "id",
    },
    Table {
        name: "one_time_tokens",
        columns: &[
            ("token_hash", Text),
            ("purpose", Text),
            ("subject", OptionalText),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        order_by: "token_hash",
    },
    Table {
        name: "invites",
        columns: &[
            ("id", Text),
            ("token_hash", Text),
            ("email", Text),
            ("roles", Text),
            ("invited_by", OptionalText),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        order_by: "id",
    },
    Table {
        name: "email_challenges",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("purpose", Text),
            ("email", Text),
            ("code_hash", Text),
            ("link_hash", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        order_by: "id",
    },
    Table { name: "throttle", columns: &[("key", Text), ("failures", Int), ("last_failure_at", Int)], order_by: "key" },
    Table { name: "settings", columns: &[("key", Text), ("value", Text)], order_by: "key" },
    Table {
        name: "oidc_clients",
        columns: &[
            ("client_id", Text),
            ("name", Text),
            ("secret_hash", OptionalText),
            ("redirect_uris", Text),
            ("post_logout_redirect_uris", Text),
            ("first_party", Flag),
            ("allowed_roles", Text),
            ("created_at", Int),
        ],
        order_by: "client_id",
    },
    Table {
        name: "oidc_tokens",
        columns: &[
            ("token_hash", Text),
            ("kind", Text),
            ("grant_id", Text),
            ("client_id", Text),
            ("user_id", Text),
            ("session_id", OptionalText),
            ("scope", Text),
            ("auth_time", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", OptionalInt),
            ("redirect_uri", OptionalText),
            ("nonce", OptionalText),
            ("code_challenge", OptionalText),
        ],
        order_by: "token_hash",
    },
    Table {
        name: "oidc_consents",
        columns: &[("user_id", Text), ("client_id", Text), ("scope", Text), ("granted_at", Int)],
        order_by: "user_id, client_id",
    },
    // `is_current` is not copied: the current key is the one not retired, and the copy's next rotation
    // marks its successor.
    Table {
        name: "oidc_signing_keys",
        columns: &[
            ("kid", Text),
            ("algorithm", Text),
            ("private_pkcs8", Text),
            ("public_jwk", Text),
            ("created_at", Int),
            ("retired_at", OptionalInt),
        ],
        order_by: "kid",
    },
];

/// Rows per INSERT statement (well under both backends' limit on bound values).
const BATCH: usize = 200;

/// Told about progress: the table, rows copied so far and rows in the table.
pub trait Progress {
    fn update(&mut self, table: &str, done: u64, total: u64);
    fn finish_table(&mut self, table: &str, total: u64);
}

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The request cannot be carried out as given (nothing was written).
    #[error("{0}")]
    Refused(String),
    /// Reading, writing or verifying failed; the target was left as it was.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// How many rows of each table were copied (and found in the target before committing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied(pub Vec<(&'static str, u64)>);

/// Copies everything from the database at `from` into the empty database at `to`.
pub async fn copy_database(from: &str, to: &str, progress: &mut dyn Progress) -> Result<Copied, CopyError> {
    if same_database(from, to) {
        return Err(CopyError::Refused("--from and --to name the same database".into()));
    }
    // Bring both schemas to this version of Gatehouse (this is also what any Gatehouse start would do).
    super::open(from).await.with_context(|| format!("while opening the source {}", redact_url(from)))?;
    super::open(to).await.with_context(|| format!("while opening the target {}", redact_url(to)))?;

    sqlx::any::install_default_drivers();
    let source = any_pool(from).await?;
    let target = any_pool(to).await?;

    let mut tx = target.begin().await.context("while starting the transaction on the target")?;
    for table in TABLES {
        let present = count(&mut *tx, table.name).await?;
        if present > 0 {
            return Err(CopyError::Refused(format!(
                "the target is not empty ({} has {present} rows); copy into a new, empty database",
                table.name
            )));
        }
    }
    let mut copied = Vec::new();
    for table in TABLES {
        let total = count(&source, table.name).await?;
        let done = copy_table(&source, &mut tx, table, total, progress).await?;
        let arrived = count(&mut *tx, table.name).await?;
        if done != total || arrived != total {
            let table = table.name;
            return Err(anyhow::anyhow!(
                "{table}: {total} rows in the source, {done} read, {arrived} in the target; nothing was copied"
            )
            .into());
        }
        progress.finish_table(table.name, total);
        copied.push((table.name, total));
    }
    tx.commit().await.context("while committing the copy")?;
    Ok(Copied(copied))
}

async fn any_pool(url: &str) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .with_context(|| format!("while connecting to {}", redact_url(url)))
}

fn same_database(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

async fn count<'e>(executor: impl sqlx::Executor<'e, Database = Any>, table: &str) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT CAST(count(*) AS BIGINT) FROM {table}"))
        .fetch_one(executor)
        .await
        .with_context(|| format!("while counting the rows of {table}"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One value of a row, as read.
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

async fn copy_table(
    source: &AnyPool,
    tx: &mut Transaction<'_, Any>,
    table: &Table,
    total: u64,
    progress: &mut dyn Progress,
) -> anyhow::Result<u64> {
    // Flags are read as integers on both backends (CAST of a boolean works in PostgreSQL, and is a no-op on
    // SQLite's integers).
    let select_columns: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| match kind {
            Flag => format!("CAST(CAST({name} AS INTEGER) AS BIGINT) AS {name}"),
            _ => (*name).to_owned(),
        })
        .collect();
    let select = format!("SELECT {} FROM {} ORDER BY {}", select_columns.join(", "), table.name, table.order_by);
    let mut rows = sqlx::query(&select).fetch(source);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    let mut done = 0u64;
    progress.update(table.name, 0, total);
    while let Some(row) = rows.try_next().await.with_context(|| format!("while reading {}", table.name))? {
        batch.push(read_row(&row, table)?);
        if batch.len() == BATCH {
            done += insert_batch(tx, table, &mut batch).await?;
            progress.update(table.name, done, total);
        }
    }
    if !batch.is_empty() {
        done += insert_batch(tx, table, &mut batch).await?;
        progress.update(table.name, done, total);
    }
    Ok(done)
}

fn read_row(row: &AnyRow, table: &Table) -> anyhow::Result<Vec<Value>> {
    table
        .columns
        .iter()
        .map(|(name, kind)| {
            let value = match kind {
                Text => Value::Text(Some(row.try_get::<String, _>(*name)?)),
                OptionalText => Value::Text(row.try_get::<Option<String>, _>(*name)?),
                Int | Flag => Value::Int(Some(row.try_get::<i64, _>(*name)?)),
                OptionalInt => Value::Int(row.try_get::<Option<i64>, _>(*name)?),
            };
            Ok(value)
        })
        .collect::<Result<_, sqlx::Error>>()
        .with_context(|| format!("while reading a row of {}", table.name))
}

async fn insert_batch(
    tx: &mut Transaction<'_, Any>,
    table: &Table,
    batch: &mut Vec<Vec<Value>>,
) -> anyhow::Result<u64> {
    // `$n` placeholders, written out: both SQLite and PostgreSQL read them, while sqlx's `Any` query builder
    // would write `?`, which PostgreSQL does not.
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.name, names.join(", "));
    let mut n = 0;
    for (i, _) in batch.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, (_, kind)) in table.columns.iter().enumerate() {
            n += 1;
            if j > 0 {
                sql.push_str(", ");
            }
            match kind {
                // Back to the target's own type: a boolean in PostgreSQL, an integer in SQLite.
                Flag => sql.push_str(&format!("CAST(CAST(${n} AS INTEGER) AS BOOLEAN)")),
                _ => sql.push_str(&format!("${n}")),
            }
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for row in batch.drain(..) {
        for value in row {
            query = match value {
                Value::Int(number) => query.bind(number),
                Value::Text(text) => query.bind(text),
            };
        }
    }
    let result = query.execute(&mut **tx).await.with_context(|| format!("while writing {}", table.name))?;
    Ok(result.rows_affected())
}
