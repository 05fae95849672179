//! Session events between instances with PostgreSQL's LISTEN/NOTIFY. Deleting sessions notifies
//! [`CHANNEL`] in the same transaction (so the notice goes out exactly when the deletion commits, from
//! whichever process made it: a server or `gatehouse users`); every server listens on a connection of its own
//! and passes the ids on as [`SessionEvent::Ended`]. When that connection is lost, notices sent meanwhile are
//! gone, so the listener reports [`SessionEvent::Resync`] once it is back.

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

use crate::domain::SessionId;
use crate::store::rows::db_error;
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

/// Starts listening on a connection of its own (not one from the store's pool, whose connections may be
/// stale after an outage); the returned receiver ends when the store is dropped.
pub async fn listen(options: PgConnectOptions) -> StoreResult<mpsc::Receiver<SessionEvent>> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_lazy_with(options);
    let listener = connect(&pool).await?;
    let (events, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut listener = Some(listener);
        loop {
            let Some(current) = listener.as_mut() else {
                // Lost: connect again (every second until the database answers), then say events were missed.
                match connect(&pool).await {
                    Ok(fresh) => {
                        tracing::info!("following session events from PostgreSQL again");
                        listener = Some(fresh);
                        if events.send(SessionEvent::Resync).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                }
                continue;
            };
            let event = match current.try_recv().await {
                Ok(Some(notice)) => SessionEvent::Ended(
                    notice
                        .payload()
                        .split(',')
                        .filter(|id| !id.is_empty())
                        .map(|id| SessionId(id.to_owned()))
                        .collect(),
                ),
                // sqlx noticed the loss itself and will connect again on the next call.
                Ok(None) => SessionEvent::Resync,
                Err(err) => {
                    // Some losses (e.g. a reset connection) leave sqlx holding the dead connection: start over.
                    tracing::warn!(error = %err, "lost the PostgreSQL session-event connection; connecting again");
                    listener = None;
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

async fn connect(pool: &PgPool) -> StoreResult<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.map_err(db_error)?;
    listener.listen(CHANNEL).await.map_err(db_error)?;
    Ok(listener)
}
