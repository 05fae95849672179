//! Keeping an open WebSocket tunnel tied to its session. The tunnel closes once the session stops being
//! valid (ended elsewhere, expired, its user disabled); ending a session closes it at once through the
//! revocation hub, and this watch catches what no event announces (expiry, a store that stopped answering).
//!
//! An open tab is not use: only the data frames a client sends through the tunnel (widget changes, reruns)
//! keep the session from idling out, so a tab left open on a desk idles out like any other session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::client_frames::FrameWatch;
use crate::app::SharedState;

/// Set by the tunnel when its client sent a data frame; taken by the watch.
#[derive(Debug, Default, Clone)]
pub struct TunnelUse(Arc<AtomicBool>);

impl TunnelUse {
    /// The observer for the client's side of the relay.
    pub fn observer(&self) -> impl FnMut(&[u8]) + use<> {
        let flag = self.0.clone();
        let mut frames = FrameWatch::default();
        move |bytes| {
            if frames.feed(bytes) {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// The shortest pause between checks, whatever the idle timeout.
const MIN_RECHECK: Duration = Duration::from_millis(100);

/// Watches the session behind `cookie` until `revoke` is cancelled (the tunnel closed) or the session ends
/// (then cancels `revoke`, closing the tunnel). Checks every `[session]` recheck interval, or an eighth of the
/// session's idle timeout when that is shorter, so use is counted well before the session could idle out.
pub fn watch_session(
    state: SharedState,
    cookie: String,
    revoke: CancellationToken,
    used: TunnelUse,
    idle_timeout: Duration,
) {
    let every = state.session_recheck.min(idle_timeout / 8).max(MIN_RECHECK);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = revoke.cancelled() => return,
            }
            let checked = if used.take() {
                state.sessions.use_session(&cookie).await
            } else {
                state.sessions.peek(&cookie).await
            };
            match checked {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::info!("closing a WebSocket: its session is no longer valid");
                    revoke.cancel();
                    return;
                }
                Err(err) => {
                    // Fail closed: without the database the session cannot be vouched for.
                    tracing::warn!(error = %err, "closing a WebSocket: its session cannot be checked");
                    revoke.cancel();
                    return;
                }
            }
        }
    });
}
