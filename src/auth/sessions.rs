//! Issuing, checking and ending sessions. The token lives only in the browser; the store keeps its hash.
//! Validity is decided against the injected clock, so tests cross idle and absolute expiry by moving it.

use std::sync::{Arc, OnceLock};

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::config::SessionConfig;
use crate::domain::{NewSession, Session, SessionId, SessionToken, TokenDigest, User, UserId};
use crate::store::{SharedStore, StoreError};

use super::AssertionSigner;
use super::identity::IdentityValues;
use super::revocation::RevocationHub;
use super::session_cache::{Cached, SessionCache};

/// Writing `last_seen_at` on every request would turn every proxied request into a database write;
/// once a minute is precise enough for idle timeouts measured in hours (shorter ones are touched more often,
/// see [`touch_interval`]).
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// How stale a session's `last_seen_at` may become while it is in use: a minute, or an eighth of its idle
/// timeout when that is shorter, so use always keeps a session alive.
pub fn touch_interval(session: &Session) -> Duration {
    TOUCH_INTERVAL.min(session.idle_timeout / 8)
}

/// Whether a validation counts as use of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// A request or a message through the gateway: `last_seen_at` moves when [`touch_interval`] has passed.
    IfDue,
    /// Only looking (an open tab following its session's state): the idle timer runs on.
    Never,
    /// "Stay signed in": `last_seen_at` moves now.
    Now,
}

/// A request's proven identity. Shared (behind an `Arc`) by every request the session cache serves it to.
#[derive(Debug)]
pub struct Authenticated {
    pub session: Session,
    pub user: User,
    /// Made on first use, then reused for as long as this validation is cached.
    identity: OnceLock<IdentityValues>,
}

impl Authenticated {
    pub fn new(session: Session, user: User) -> Self {
        Self { session, user, identity: OnceLock::new() }
    }

    /// The header values that tell the app who this is. The assertion in them was signed at most
    /// [`ASSERTION_LIFETIME`](super::assertion::ASSERTION_LIFETIME)/2 before this validation was made, and a
    /// validation is cached for about a second, so it is always well within its lifetime.
    pub fn identity(&self, signer: &AssertionSigner, now: OffsetDateTime) -> &IdentityValues {
        self.identity.get_or_init(|| IdentityValues::new(&self.session, &self.user, signer, now))
    }
}

/// Who is starting a session, for the session record and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct Sessions {
    store: SharedStore,
    clock: SharedClock,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    remember_me: Duration,
    revocations: RevocationHub,
    cache: SessionCache,
}

impl Sessions {
    /// `cache` is how long a validated session may be served from memory (zero: always ask the store) and
    /// how many shards the cache has (see [`SessionCache::new`]).
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        config: &SessionConfig,
        revocations: RevocationHub,
        cache: (std::time::Duration, usize),
    ) -> Self {
        let to_time = |d: std::time::Duration| Duration::try_from(d).unwrap_or(Duration::days(365));
        Self {
            cache: SessionCache::new(to_time(cache.0), cache.1),
            store,
            clock,
            idle_timeout: to_time(config.idle_timeout),
            absolute_timeout: to_time(config.absolute_timeout),
            remember_me: to_time(config.remember_me),
            revocations,
        }
    }

    /// Starts a new session with a fresh token; returns the token for the cookie.
    pub async fn start(
        &self,
        user: &User,
        remember_me: bool,
        client: &ClientInfo,
    ) -> Result<(SessionToken, Session), StoreError> {
        let now = self.clock.now();
        let token = SessionToken::generate();
        let (lifetime, idle) =
            if remember_me { (self.remember_me, self.remember_me) } else { (self.absolute_timeout, self.idle_timeout) };
        let new = NewSession {
            id: SessionId::generate(),
            token_hash: token.hash(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + lifetime,
            idle_timeout: idle,
            remember_me,
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.as_deref().map(|ua| ua.chars().take(512).collect()),
        };
        self.store.create_session(new.clone()).await?;
        let session = Session {
            id: new.id,
            user_id: new.user_id,
            created_at: now,
            last_seen_at: now,
            expires_at: new.expires_at,
            idle_timeout: idle,
            remember_me,
            client_ip: new.client_ip,
            user_agent: new.user_agent,
        };
        Ok((token, session))
    }

    /// The session a cookie value stands for, if it is well-formed, known, unexpired and its user enabled.
    /// This is a use of the session: it keeps the session from idling out.
    pub async fn authenticate(&self, cookie_value: &str) -> Result<Option<Arc<Authenticated>>, StoreError> {
        // Checked and hashed in place: no copy of the secret is made on the proxy path.
        if !SessionToken::is_well_formed(cookie_value) {
            return Ok(None);
        }
        let digest = TokenDigest::of(cookie_value);
        let now = self.clock.now();
        match self.cache.get(&digest, now) {
            Cached::Fresh(cached) if cached.session.is_valid_at(now) => return Ok(Some(cached)),
            Cached::RefreshDue(cached) if cached.session.is_valid_at(now) => {
                // Refresh ahead, in the background: a busy session's validation is renewed before it
                // expires, so its requests never all wait for the store at once when it does.
                let sessions = self.clone();
                tokio::spawn(async move {
                    let now = sessions.clock.now();
                    match sessions.validate_in_store(digest, now, Touch::IfDue).await {
                        Ok(Some(_)) => {}
                        Ok(None) => sessions.cache.evict_digest(&digest),
                        // Left to expire: after that, requests ask the store themselves and fail closed.
                        Err(err) => tracing::debug!(error = %err, "could not refresh a cached session"),
                    }
                });
                return Ok(Some(cached));
            }
            _ => {}
        }
        self.validate_in_store(digest, now, Touch::IfDue).await
    }

    /// The session a cookie value stands for, asked of the store, without counting as use: for watching a
    /// session (an open tab, a WebSocket with nothing sent) while its idle timer runs on.
    pub async fn peek(&self, cookie_value: &str) -> Result<Option<Arc<Authenticated>>, StoreError> {
        self.validate_cookie(cookie_value, Touch::Never).await
    }

    /// The session a cookie value stands for, asked of the store, counted as use when a touch is due (a
    /// WebSocket that carried messages).
    pub async fn use_session(&self, cookie_value: &str) -> Result<Option<Arc<Authenticated>>, StoreError> {
        self.validate_cookie(cookie_value, Touch::IfDue).await
    }

    /// "Stay signed in": the session's idle timer starts again now. `None` when it has already ended.
    pub async fn extend(&self, cookie_value: &str) -> Result<Option<Arc<Authenticated>>, StoreError> {
        self.validate_cookie(cookie_value, Touch::Now).await
    }

    async fn validate_cookie(
        &self,
        cookie_value: &str,
        touch: Touch,
    ) -> Result<Option<Arc<Authenticated>>, StoreError> {
        if !SessionToken::is_well_formed(cookie_value) {
            return Ok(None);
        }
        self.validate_in_store(TokenDigest::of(cookie_value), self.clock.now(), touch).await
    }

    /// The store's answer for a session token's digest; a valid session is cached.
    async fn validate_in_store(
        &self,
        digest: TokenDigest,
        now: OffsetDateTime,
        touch: Touch,
    ) -> Result<Option<Arc<Authenticated>>, StoreError> {
        let epoch = self.cache.epoch();
        let hash = digest.to_hash();
        let Some((session, user)) = self.store.session_by_token_hash(&hash).await? else {
            return Ok(None);
        };
        if !session.is_valid_at(now) {
            self.store.delete_session(&session.id).await?;
            return Ok(None);
        }
        if user.disabled {
            return Ok(None);
        }
        let due = match touch {
            Touch::IfDue => now - session.last_seen_at >= touch_interval(&session),
            Touch::Now => true,
            Touch::Never => false,
        };
        let session = if due {
            self.store.touch_session(&session.id, now).await?;
            Session { last_seen_at: now, ..session }
        } else {
            session
        };
        let authenticated = Arc::new(Authenticated::new(session, user));
        self.cache.put(digest, authenticated.clone(), now, epoch);
        Ok(Some(authenticated))
    }

    /// How long the browser should keep the cookie: only remembered sessions outlive the browser.
    pub fn cookie_max_age(&self, session: &Session) -> Option<Duration> {
        session.remember_me.then(|| session.expires_at - session.created_at)
    }

    /// Ends one session and closes its live connections.
    pub async fn end(&self, id: &SessionId) -> Result<bool, StoreError> {
        let deleted = self.store.delete_session(id).await?;
        self.cache.evict_sessions(std::slice::from_ref(id));
        self.revocations.revoke([id]);
        Ok(deleted)
    }

    /// A browser that had a session signed in again: the old session ends. The same person signing in again
    /// (`prompt=login`, `max_age`) keeps the apps signed in from the old session (their OpenID Connect tokens
    /// move to the new one); when someone else signs in, those apps end with the old session.
    pub async fn replace(&self, previous: &Authenticated, new: &Session) -> Result<(), StoreError> {
        if previous.user.id == new.user_id {
            self.store.move_session_grants(&previous.session.id, &new.id).await?;
        }
        self.end(&previous.session.id).await?;
        Ok(())
    }

    /// Ends every session of a user (disable, delete, password change) and closes their live connections.
    pub async fn end_all_for_user(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let ids = self.store.delete_user_sessions(user_id).await?;
        self.cache.evict_user(user_id);
        self.revocations.revoke(ids.iter());
        Ok(ids.len())
    }

    /// The user's details changed (name, email, roles): forget cached validations so the next request
    /// carries the new values to the app.
    pub fn refresh_user(&self, user_id: &UserId) {
        self.cache.evict_user(user_id);
    }

    /// Another process ended these sessions: forget them and close their live connections here too.
    pub fn forget_ended(&self, ids: &[SessionId]) {
        self.cache.evict_sessions(ids);
        self.revocations.revoke(ids.iter());
    }

    /// Session events may have been missed: drop every cached validation (the next request asks the store).
    pub fn forget_cached(&self) {
        self.cache.clear();
    }

    pub fn revocations(&self) -> &RevocationHub {
        &self.revocations
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
