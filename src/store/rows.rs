//! What the SQL backends share: turning rows into domain types, and driver errors into [`StoreError`]s.
//! The functions are generic over sqlx's row type, so SQLite and PostgreSQL map rows the same way; each
//! backend keeps only its own SQL (see `sqlite/` and `postgres/`).

use sqlx::{ColumnIndex, Decode, Row, Type};
use time::Duration;

use super::{StoreError, StoreResult, from_unix};
use crate::domain::user::normalize_roles;
use crate::domain::{Email, Role, Session, SessionId, User, UserId, Username};

/// Columns of `sessions` (table alias `s`) as [`session_from_row`] reads them.
pub(super) const SESSION_COLUMNS: &str = "s.id AS session_id, s.user_id, s.created_at AS session_created_at, \
     s.last_seen_at, s.expires_at, s.idle_timeout_secs, s.remember_me, s.client_ip, s.user_agent";

fn get_err(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A `users` row with its roles folded into one comma-separated `roles` column. Flags decode as `bool` on
/// both backends (sqlx reads SQLite's 0/1 integers as booleans).
pub(super) fn user_from_row<'r, R>(row: &'r R) -> StoreResult<User>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
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
        email: email.map(Email::from_stored),
        display_name: row.try_get("display_name").map_err(get_err)?,
        roles: normalize_roles(roles),
        password_hash: row.try_get("password_hash").map_err(get_err)?,
        disabled: row.try_get("disabled").map_err(get_err)?,
        email_verified: row.try_get("email_verified").map_err(get_err)?,
        pending_until: row.try_get::<Option<i64>, _>("pending_until").map_err(get_err)?.map(from_unix),
        created_at: from_unix(row.try_get("created_at").map_err(get_err)?),
        updated_at: from_unix(row.try_get("updated_at").map_err(get_err)?),
        last_login_at: row.try_get::<Option<i64>, _>("last_login_at").map_err(get_err)?.map(from_unix),
        login_count: row.try_get("login_count").map_err(get_err)?,
    })
}

/// A `sessions` row selected with [`SESSION_COLUMNS`].
pub(super) fn session_from_row<'r, R>(row: &'r R) -> StoreResult<Session>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Session {
        id: SessionId(row.try_get("session_id").map_err(get_err)?),
        user_id: UserId(row.try_get("user_id").map_err(get_err)?),
        created_at: from_unix(row.try_get("session_created_at").map_err(get_err)?),
        last_seen_at: from_unix(row.try_get("last_seen_at").map_err(get_err)?),
        expires_at: from_unix(row.try_get("expires_at").map_err(get_err)?),
        idle_timeout: Duration::seconds(row.try_get("idle_timeout_secs").map_err(get_err)?),
        remember_me: row.try_get("remember_me").map_err(get_err)?,
        client_ip: row.try_get("client_ip").map_err(get_err)?,
        user_agent: row.try_get("user_agent").map_err(get_err)?,
    })
}

/// Maps a driver error; unique violations become [`StoreError::Conflict`] naming the column. PostgreSQL
/// names the constraint (`users_username_key`), SQLite the column in its message (`users.username`).
pub(super) fn db_error(err: sqlx::Error) -> StoreError {
    if let Some(db) = err.as_database_error()
        && db.is_unique_violation()
    {
        let what = db.constraint().unwrap_or_else(|| db.message());
        return if what.contains("username") {
            StoreError::Conflict("username")
        } else if what.contains("email") {
            StoreError::Conflict("email")
        } else {
            StoreError::Conflict("value")
        };
    }
    StoreError::Database(err.to_string())
}

/// Turns "no row was affected" into [`StoreError::NotFound`].
pub(super) fn found(rows: u64) -> StoreResult<()> {
    if rows == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}
