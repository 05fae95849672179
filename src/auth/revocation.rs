//! Live revocation: long-lived connections (WebSockets) register under their session id, and ending a
//! session cancels them, so an open Streamlit tab stops working the moment its session ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::domain::SessionId;

/// Live connections per session: (connection number, its cancellation token).
type LiveMap = HashMap<SessionId, Vec<(u64, CancellationToken)>>;

#[derive(Clone, Default)]
pub struct RevocationHub {
    inner: Arc<Mutex<LiveMap>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

/// Keeps a connection registered while alive; dropping it unregisters.
pub struct LiveConnection {
    hub: RevocationHub,
    session: SessionId,
    id: u64,
    pub cancelled: CancellationToken,
}

impl RevocationHub {
    pub fn register(&self, session: &SessionId) -> LiveConnection {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = CancellationToken::new();
        self.lock().entry(session.clone()).or_default().push((id, token.clone()));
        LiveConnection { hub: self.clone(), session: session.clone(), id, cancelled: token }
    }

    /// Closes every live connection of these sessions.
    pub fn revoke<'a>(&self, sessions: impl IntoIterator<Item = &'a SessionId>) {
        let mut map = self.lock();
        for session in sessions {
            if let Some(connections) = map.remove(session) {
                for (_, token) in connections {
                    token.cancel();
                }
            }
        }
    }

    /// Number of registered live connections (for metrics and tests).
    pub fn live_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveMap> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        // Whatever watches this connection (the session re-check) stops with it.
        self.cancelled.cancel();
        let mut map = self.hub.lock();
        if let Some(list) = map.get_mut(&self.session) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_a_session_cancels_its_connections_only() {
        let hub = RevocationHub::default();
        let a = SessionId("a".into());
        let b = SessionId("b".into());
        let conn_a = hub.register(&a);
        let conn_b = hub.register(&b);
        assert_eq!(hub.live_count(), 2);
        hub.revoke([&a]);
        assert!(conn_a.cancelled.is_cancelled());
        assert!(!conn_b.cancelled.is_cancelled());
        drop(conn_b);
        assert_eq!(hub.live_count(), 0);
    }
}
