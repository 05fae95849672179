//! A short-lived cache of validated sessions, so the proxy path does not ask the database on every request
//! of a busy tab (a SQLite round trip costs a thread hop; at tens of thousands of requests per second that
//! is most of the work). Entries live at most `ttl` (1 s by default): sessions ended through this server
//! are evicted at once; anything else (another instance, the CLI, a disabled user) is seen within `ttl`.
//! Validity (idle and absolute expiry) is still checked on every hit against the current time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use super::sessions::Authenticated;
use crate::domain::{SessionId, TokenHash, UserId};

/// Above this many entries, stale ones are swept before inserting.
const SWEEP_ABOVE: usize = 100_000;

struct Entry {
    authenticated: Authenticated,
    cached_at: OffsetDateTime,
}

#[derive(Clone)]
pub struct SessionCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<TokenHash, Entry>>>,
}

impl SessionCache {
    /// A zero `ttl` disables the cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, hash: &TokenHash, now: OffsetDateTime) -> Option<Authenticated> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(hash)?;
        let age = now - entry.cached_at;
        (age >= Duration::ZERO && age < self.ttl).then(|| entry.authenticated.clone())
    }

    pub fn put(&self, hash: TokenHash, authenticated: Authenticated, now: OffsetDateTime) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= SWEEP_ABOVE {
            let ttl = self.ttl;
            entries.retain(|_, entry| now - entry.cached_at < ttl);
        }
        entries.insert(hash, Entry { authenticated, cached_at: now });
    }

    pub fn evict_sessions(&self, ids: &[SessionId]) {
        self.lock().retain(|_, entry| !ids.contains(&entry.authenticated.session.id));
    }

    pub fn evict_user(&self, user: &UserId) {
        self.lock().retain(|_, entry| entry.authenticated.user.id != *user);
    }
}
