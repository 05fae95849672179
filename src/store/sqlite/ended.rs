//! Session events on SQLite. Every deleted session is recorded in `ended_sessions` by a trigger (see
//! `migrations/sqlite/0003_admin.sql`), whichever process deleted it; each server reads the rows added since
//! it last looked, every [`POLL_INTERVAL`], and passes the ids on as [`SessionEvent::Ended`]. That is how
//! `gatehouse users disable` in a shell closes the user's open tabs on the running server within a second.
//! The query is one indexed range read of usually nothing, so polling costs next to nothing.

use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::mpsc;

use crate::domain::SessionId;
use crate::store::rows::db_error;
use crate::store::{SessionEvent, StoreResult};

/// How often a server looks for sessions ended elsewhere: well inside the one-second promise.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Rows read per poll at most; more wait for the next poll.
const BATCH: i64 = 2000;
/// How long rows are kept: far longer than any server takes to read them.
pub const KEEP_SECS: i64 = 3600;

/// Follows `ended_sessions` from its current end; the task stops when the receiver is dropped.
pub async fn listen(pool: SqlitePool) -> StoreResult<mpsc::Receiver<SessionEvent>> {
    let mut last_seen: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM ended_sessions")
        .fetch_one(&pool)
        .await
        .map_err(db_error)?;
    let (events, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(POLL_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = events.closed() => return,
            }
            let rows: Result<Vec<(i64, String)>, _> =
                sqlx::query_as("SELECT seq, session_id FROM ended_sessions WHERE seq > ? ORDER BY seq LIMIT ?")
                    .bind(last_seen)
                    .bind(BATCH)
                    .fetch_all(&pool)
                    .await;
            let rows = match rows {
                Ok(rows) => {
                    if failing {
                        // Rows written meanwhile are still there: nothing was missed.
                        tracing::info!("reading ended sessions from the database again");
                        failing = false;
                    }
                    rows
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "could not read ended sessions; retrying");
                        failing = true;
                    }
                    continue;
                }
            };
            let Some((last, _)) = rows.last() else { continue };
            last_seen = *last;
            let ids = rows.into_iter().map(|(_, id)| SessionId(id)).collect();
            if events.send(SessionEvent::Ended(ids)).await.is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}
