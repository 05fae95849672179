//! Session events between instances with PostgreSQL's LISTEN/NOTIFY. Deleting sessions notifies
//! [`CHANNEL`] in the same transaction (so the notice goes out exactly when the deletion commits, from
//! whichever process made it: a server or `gatehouse users`); every server listens on a connection of its own
//! and passes the ids on as [`SessionEvent::Ended`]. When that connection is lost, notices sent meanwhile are
//! gone, so the listener reports [`SessionEvent::Resync`] once it is back.

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

use super::db_error;
use crate::domain::SessionId;
use crate::store::{SessionEvent, StoreResult};

pub const CHANNEL: &str = "gatehouse_sessions_ended";

/// PostgreSQL refuses payloads of 8000 bytes or more; ids are 22 characters, so this many fit with room.
const IDS_PER_NOTICE: usize = 200;

/// Notifies every listener that `ids` ended; call inside the transaction that deletes them.
pub async fn notify_ended(conn: &mut PgConnection, ids: &[String]) -> StoreResult<()> {
    for chunk in ids.chunks(IDS_PER_NOTICE) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(chunk.join(","))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Starts listening; the returned receiver ends when the store is dropped.
pub async fn listen(pool: &PgPool) -> StoreResult<mpsc::Receiver<SessionEvent>> {
    let mut listener = PgListener::connect_with(pool).await.map_err(db_error)?;
    listener.listen(CHANNEL).await.map_err(db_error)?;
    let (events, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let event = match listener.try_recv().await {
                Ok(Some(notice)) => SessionEvent::Ended(
                    notice
                        .payload()
                        .split(',')
                        .filter(|id| !id.is_empty())
                        .map(|id| SessionId(id.to_owned()))
                        .collect(),
                ),
                // The connection was lost; the next call connects again and listens anew.
                Ok(None) => SessionEvent::Resync,
                Err(err) => {
                    tracing::warn!(error = %err, "lost the PostgreSQL session-event connection; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}
