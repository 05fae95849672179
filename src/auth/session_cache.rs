//! A short-lived cache of validated sessions, so the proxy path does not ask the database on every request
//! of a busy tab (a SQLite round trip costs a thread hop; at tens of thousands of requests per second that
//! is most of the work). Entries live at most `ttl` (1 s by default): sessions ended through this server
//! are evicted at once; anything else (another instance, the CLI, a disabled user) is seen within `ttl`.
//! Validity (idle and absolute expiry) is still checked on every hit against the current time.
//!
//! Once an entry is half its `ttl` old, the next lookup is told to refresh it ([`Cached::RefreshDue`], once
//! per entry) while still being served from it: a busy session is renewed ahead of time, instead of all its
//! requests on a worker missing together and waiting for the store when the entry expires.
//!
//! A validation read from the store just before an eviction must not be put back after it (a refresh in the
//! background racing a sign-out elsewhere would otherwise undo the revocation for a whole `ttl`): every
//! eviction moves an epoch on, and a validation is cached only if no eviction happened since it began.
//!
//! The cache has one shard per worker thread ([`crate::server::workers::current`]), so a lookup takes a
//! lock no other core is using. A busy session is validated once per `ttl` per worker instead of once per
//! `ttl`; evictions visit every shard.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Duration, OffsetDateTime};

use super::sessions::Authenticated;
use crate::domain::{DigestHasher, SessionId, TokenDigest, UserId};
use crate::server::workers;

/// Above this many entries in a shard, stale ones are swept before inserting.
const SWEEP_ABOVE: usize = 100_000;

struct Entry {
    authenticated: Arc<Authenticated>,
    cached_at: OffsetDateTime,
    /// Set once a lookup has been told to refresh this entry.
    refresh_claimed: AtomicBool,
}

/// What the cache knows about a session.
pub enum Cached {
    Fresh(Arc<Authenticated>),
    /// Valid, and this caller (and no other) should refresh it now.
    RefreshDue(Arc<Authenticated>),
    Miss,
}

type Entries = HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>;
type Shard = Mutex<Entries>;

#[derive(Clone)]
pub struct SessionCache {
    ttl: Duration,
    shards: Arc<[Shard]>,
    /// Moved on by every eviction; see the module notes.
    epoch: Arc<AtomicU64>,
}

impl SessionCache {
    /// A zero `ttl` disables the cache. `shards` is normally the number of workers plus one (for work done
    /// outside the workers).
    pub fn new(ttl: Duration, shards: usize) -> Self {
        Self { ttl, shards: (0..shards.max(1)).map(|_| Shard::default()).collect(), epoch: Arc::default() }
    }

    /// Read before validating a session in the store; hand it to [`put`](Self::put).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Called before removing entries, so that a validation begun earlier is not put back afterwards.
    fn advance_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn lock(shard: &Shard) -> MutexGuard<'_, Entries> {
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn own_shard(&self) -> MutexGuard<'_, Entries> {
        Self::lock(&self.shards[workers::current() % self.shards.len()])
    }

    pub fn get(&self, digest: &TokenDigest, now: OffsetDateTime) -> Cached {
        if self.ttl.is_zero() {
            return Cached::Miss;
        }
        let entries = self.own_shard();
        let Some(entry) = entries.get(digest) else {
            return Cached::Miss;
        };
        let age = now - entry.cached_at;
        if age < Duration::ZERO || age >= self.ttl {
            return Cached::Miss;
        }
        let authenticated = entry.authenticated.clone();
        if age >= self.ttl / 2 && !entry.refresh_claimed.swap(true, Ordering::Relaxed) {
            return Cached::RefreshDue(authenticated);
        }
        Cached::Fresh(authenticated)
    }

    /// Caches a validation that began at `epoch`, unless an eviction has happened since (then the store may
    /// already say otherwise, and the next request asks it again).
    /// The entry this validation would have replaced goes too: it may be a refresh-claimed entry that would
    /// otherwise never be refreshed again.
    pub fn put(&self, digest: TokenDigest, authenticated: Arc<Authenticated>, now: OffsetDateTime, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.own_shard();
        if self.epoch() != epoch {
            entries.remove(&digest);
            return;
        }
        if entries.len() >= SWEEP_ABOVE {
            let ttl = self.ttl;
            entries.retain(|_, entry| now - entry.cached_at < ttl);
        }
        entries.insert(digest, Entry { authenticated, cached_at: now, refresh_claimed: AtomicBool::new(false) });
    }

    /// Forgets one token's entry on this worker (its refresh found the session gone).
    pub fn evict_digest(&self, digest: &TokenDigest) {
        self.own_shard().remove(digest);
    }

    pub fn evict_sessions(&self, ids: &[SessionId]) {
        self.advance_epoch();
        for shard in self.shards.iter() {
            Self::lock(shard).retain(|_, entry| !ids.contains(&entry.authenticated.session.id));
        }
    }

    pub fn clear(&self) {
        self.advance_epoch();
        for shard in self.shards.iter() {
            Self::lock(shard).clear();
        }
    }

    pub fn evict_user(&self, user: &UserId) {
        self.advance_epoch();
        for shard in self.shards.iter() {
            Self::lock(shard).retain(|_, entry| entry.authenticated.user.id != *user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Session, User, Username};
    use crate::server::workers::Workers;

    fn authenticated(id: &str, user: &str) -> Arc<Authenticated> {
        let now = OffsetDateTime::now_utc();
        let session = Session {
            id: SessionId(id.to_owned()),
            user_id: UserId(user.to_owned()),
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::hours(1),
            idle_timeout: Duration::hours(1),
            remember_me: false,
            client_ip: None,
            user_agent: None,
        };
        let user = User {
            id: UserId(user.to_owned()),
            username: Username::parse(user).unwrap(),
            email: None,
            display_name: String::new(),
            roles: vec![],
            password_hash: None,
            disabled: false,
            email_verified: false,
            pending_until: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            login_count: 0,
        };
        Arc::new(Authenticated::new(session, user))
    }

    #[test]
    fn an_entry_is_served_within_its_ttl_only() {
        let cache = SessionCache::new(Duration::seconds(1), 1);
        let digest = TokenDigest::of("a-token");
        let now = OffsetDateTime::now_utc();
        cache.put(digest, authenticated("s1", "alice"), now, cache.epoch());
        assert!(matches!(cache.get(&digest, now + Duration::milliseconds(499)), Cached::Fresh(_)));
        assert!(
            matches!(cache.get(&digest, now + Duration::milliseconds(500)), Cached::RefreshDue(_)),
            "half-way through its life, one lookup is asked to refresh it"
        );
        assert!(
            matches!(cache.get(&digest, now + Duration::milliseconds(999)), Cached::Fresh(_)),
            "and only one: the others keep being served"
        );
        assert!(matches!(cache.get(&digest, now + Duration::seconds(1)), Cached::Miss), "expired at ttl");
        assert!(
            matches!(cache.get(&digest, now - Duration::seconds(1)), Cached::Miss),
            "a clock moved back is not trusted"
        );
        assert!(matches!(SessionCache::new(Duration::ZERO, 1).get(&digest, now), Cached::Miss));
        cache.put(digest, authenticated("s1", "alice"), now, cache.epoch());
        assert!(
            matches!(cache.get(&digest, now + Duration::milliseconds(700)), Cached::RefreshDue(_)),
            "a new entry can be refreshed again"
        );
        cache.evict_digest(&digest);
        assert!(matches!(cache.get(&digest, now), Cached::Miss));
    }

    #[test]
    fn a_validation_begun_before_an_eviction_is_not_cached_after_it() {
        let cache = SessionCache::new(Duration::seconds(1), 1);
        let digest = TokenDigest::of("a-token");
        let now = OffsetDateTime::now_utc();
        // A refresh reads the store (the session still there)...
        let began = cache.epoch();
        // ...meanwhile the session is ended elsewhere and evicted...
        cache.evict_sessions(&[SessionId("s1".into())]);
        // ...and the refresh's answer arrives late: it must not be served.
        cache.put(digest, authenticated("s1", "alice"), now, began);
        assert!(matches!(cache.get(&digest, now), Cached::Miss));
        for evict in [SessionCache::clear as fn(&SessionCache), |c: &SessionCache| c.evict_user(&UserId("bob".into()))]
        {
            let began = cache.epoch();
            evict(&cache);
            cache.put(digest, authenticated("s1", "alice"), now, began);
            assert!(matches!(cache.get(&digest, now), Cached::Miss));
        }
        cache.put(digest, authenticated("s1", "alice"), now, cache.epoch());
        assert!(matches!(cache.get(&digest, now), Cached::Fresh(_)));
    }

    #[test]
    fn evictions_reach_entries_cached_by_every_worker() {
        let cache = SessionCache::new(Duration::hours(1), 3);
        let workers = Workers::start(2).unwrap();
        let now = OffsetDateTime::now_utc();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        // Both "connections" stay open until both have cached, so the second goes to the other worker.
        let release = tokio_util::sync::CancellationToken::new();
        for (token, session) in [("t1", "s1"), ("t2", "s2")] {
            let (cache, done_tx, release) = (cache.clone(), done_tx.clone(), release.clone());
            workers.spawn_connection(async move {
                cache.put(TokenDigest::of(token), authenticated(session, "alice"), now, cache.epoch());
                done_tx.send(crate::server::workers::current()).unwrap();
                release.cancelled().await;
            });
        }
        let mut on: Vec<usize> = (0..2).map(|_| done_rx.recv().unwrap()).collect();
        release.cancel();
        on.sort();
        assert_eq!(on, vec![1, 2], "one entry cached on each worker");
        assert!(matches!(cache.get(&TokenDigest::of("t1"), now), Cached::Miss), "worker 0 has a shard of its own");

        // What each worker still finds, as (t1, t2) summed over both workers.
        let found_by_workers = |cache: &SessionCache| {
            while workers.open_connections() != 0 {
                std::thread::yield_now();
            }
            let (seen_tx, seen_rx) = std::sync::mpsc::channel();
            let release = tokio_util::sync::CancellationToken::new();
            for _ in 0..2 {
                let (cache, seen_tx, release) = (cache.clone(), seen_tx.clone(), release.clone());
                workers.spawn_connection(async move {
                    let has = |t: &str| usize::from(!matches!(cache.get(&TokenDigest::of(t), now), Cached::Miss));
                    seen_tx.send((crate::server::workers::current(), has("t1"), has("t2"))).unwrap();
                    release.cancelled().await;
                });
            }
            let seen: Vec<(usize, usize, usize)> = (0..2).map(|_| seen_rx.recv().unwrap()).collect();
            release.cancel();
            assert_ne!(seen[0].0, seen[1].0, "asked on both workers");
            seen.iter().fold((0, 0), |(a, b), (_, t1, t2)| (a + t1, b + t2))
        };
        assert_eq!(found_by_workers(&cache), (1, 1));
        cache.evict_sessions(&[SessionId("s1".into())]);
        assert_eq!(found_by_workers(&cache), (0, 1), "s1 evicted from the worker that cached it, s2 kept");
        cache.evict_user(&UserId("alice".into()));
        assert_eq!(found_by_workers(&cache), (0, 0), "every session of the user evicted everywhere");
        workers.stop();
    }
}
