//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here (`$n` placeholders,
//! which sqlx's SQLite driver binds by number; `TRUE`/`FALSE`; `ON CONFLICT`; `RETURNING`), so each store
//! concern is written once, as a macro that `sqlite/` and `postgres/` instantiate for their store type (sqlx's
//! executors are not generic enough for plain generic functions). What really differs stays in the backend
//! folders: connecting, how roles are folded into one column (`USER_COLUMNS`), and sessions (PostgreSQL
//! notifies other instances of ended sessions).

pub(super) mod accounts;
pub(super) mod admin;
pub(super) mod audit;
pub(super) mod oidc;
pub(super) mod settings;
pub(super) mod throttle;
pub(super) mod tokens;
pub(super) mod users;
