//! Gatehouse: sign-in, accounts and access control in front of Streamlit apps, in one binary.
//!
//! [`serve`] is the whole server: give it a bound listener and the application state, and it runs until
//! the state's shutdown token is cancelled. The CLI (`main.rs`, `cli/`) and the tests both start it this way.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod import;
pub mod isolation;
pub mod mail;
pub mod oidc;
pub mod proxy;
pub mod random;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod web;

use std::time::Duration;

use tokio::net::TcpListener;

use app::SharedState;
use domain::ThrottlePolicy;

/// How often expired sessions, stale throttling counters, expired one-time tokens, email challenges and
/// invitations, unverified registrations past their time, and audit events past `[audit] retention` are
/// swept out.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Serves `state` on `listener` until `state.shutdown` is cancelled, then finishes in-flight requests.
/// Connections are served by `server.workers` threads of their own; this task accepts them and runs the
/// periodic upkeep.
pub async fn serve(listener: TcpListener, state: SharedState) -> std::io::Result<()> {
    let router = app::router(state.clone());
    tokio::spawn(sweep_expired_sessions(state.clone()));
    tokio::spawn(telemetry::metrics_upkeep(state.shutdown.clone()));
    follow_session_events(&state).await;
    let workers = server::Workers::start(state.config.server.workers)?;
    let served = server::accept_loop(listener, router, state, Some(&workers)).await;
    // Every connection has finished; the threads stop at once. Joined off this runtime's thread.
    let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
    served
}

/// Applies sessions ended by other instances (and `gatehouse users`) here at once: PostgreSQL's LISTEN/NOTIFY,
/// or SQLite's table of ended sessions read every 250 ms. Open tunnels of those sessions close.
async fn follow_session_events(state: &SharedState) {
    let mut events = match state.store.session_events().await {
        Ok(Some(events)) => events,
        Ok(None) => return,
        Err(err) => {
            // Serving still works, just without prompt revocation from elsewhere: the bounds above apply.
            tracing::error!(error = %err, "could not follow session events from the database");
            return;
        }
    };
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = state.shutdown.cancelled() => return,
            };
            match event {
                Some(store::SessionEvent::Ended(ids)) => state.sessions.forget_ended(&ids),
                Some(store::SessionEvent::Resync) => state.sessions.forget_cached(),
                None => return,
            }
        }
    });
}

async fn sweep_expired_sessions(state: SharedState) {
    let mut interval = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let now = state.clock.now();
        let store = &state.store;
        let swept = async {
            let sessions = store.delete_expired_sessions(now).await?;
            let counters = store.delete_stale_throttle(now - ThrottlePolicy::default().reset_after).await?;
            let mut records =
                store.delete_expired_one_time_tokens(now).await? + store.delete_expired_account_records(now).await?;
            records += state.oidc.sweep().await?;
            let retention = state.config.audit.retention.and_then(|r| time::Duration::try_from(r).ok());
            if let Some(cutoff) = retention.and_then(|r| now.checked_sub(r)) {
                records += store.delete_audit_before(cutoff).await?;
            }
            Ok::<_, store::StoreError>((sessions, counters, records))
        };
        match swept.await {
            Ok((0, 0, 0)) => {}
            Ok((sessions, counters, records)) => {
                tracing::info!(sessions, counters, records, "swept expired records")
            }
            Err(err) => tracing::warn!(error = %err, "could not sweep expired records"),
        }
    }
}
