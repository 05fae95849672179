//! Sessions: the browser holds a random 256-bit [`SessionToken`]; the store only ever sees its SHA-256
//! ([`TokenHash`]), so a copy of the database cannot be replayed as cookies.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::UserId;

/// The secret in the session cookie. Deliberately not `Debug`-printable and not `Serialize`.
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh token of 32 random bytes.
    pub fn generate() -> Self {
        Self(crate::random::url_token(32))
    }

    /// Accepts a cookie value only if it has the exact shape of a token we issued, so garbage never
    /// reaches the store.
    pub fn from_cookie(value: &str) -> Option<Self> {
        Self::is_well_formed(value).then(|| Self(value.to_owned()))
    }

    /// Whether a cookie value has the shape of a token we issued (43 base64url characters).
    pub fn is_well_formed(value: &str) -> bool {
        value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

/// SHA-256 of a secret token as raw bytes: the in-memory form of [`TokenHash`] (which is its hex text), for
/// lookups that should not format hex or run SipHash on every request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn to_hash(self) -> TokenHash {
        TokenHash(hex::encode(self.0))
    }
}

impl std::hash::Hash for TokenDigest {
    /// The digest is already uniformly random and cannot be chosen by a client (that would take a SHA-256
    /// preimage), so its first eight bytes are as good a hash as any; see [`DigestHasher`].
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_ne_bytes(head));
    }
}

/// A hasher for maps keyed by [`TokenDigest`]: passes the digest's leading bytes through.
#[derive(Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than TokenDigest; mix them in plainly (FNV-1a).
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// Hex SHA-256 of a secret token; what the store keeps and looks up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        TokenDigest::of(secret).to_hash()
    }

    /// Constant-time comparison, for the places that compare hashes outside an indexed lookup.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// Public identifier of a session (shown on account pages, used to end one session); not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl SessionId {
    pub fn generate() -> Self {
        Self(crate::random::hex_token(16))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// Absolute end of the session, fixed at creation.
    pub expires_at: OffsetDateTime,
    /// How long the session may sit unused before it ends.
    pub idle_timeout: Duration,
    pub remember_me: bool,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Session {
    /// Whether the session is still usable at `now`: before its absolute expiry and not idle for too long.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        now < self.ends_at()
    }

    /// When the session ends unless it is used before: its idle deadline, or its absolute end if sooner.
    pub fn ends_at(&self) -> OffsetDateTime {
        self.expires_at.min(self.last_seen_at + self.idle_timeout)
    }

    /// Whether using the session before [`Session::ends_at`] would move that end (false when the absolute
    /// end comes first).
    pub fn can_be_extended(&self) -> bool {
        self.last_seen_at + self.idle_timeout < self.expires_at
    }
}

/// What it takes to create a session.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub token_hash: TokenHash,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub idle_timeout: Duration,
    pub remember_me: bool,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_256_bits_and_a_strict_cookie_shape() {
        let token = SessionToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert!(SessionToken::from_cookie(token.expose()).is_some());
        assert!(SessionToken::from_cookie("short").is_none());
        assert!(SessionToken::from_cookie(&format!("{}=", &token.expose()[..42])).is_none());
        assert_ne!(SessionToken::generate().expose(), token.expose());
    }

    #[test]
    fn the_raw_digest_and_the_stored_hex_hash_agree() {
        let token = SessionToken::generate();
        assert_eq!(token.digest().to_hash(), token.hash());
        assert_eq!(token.hash().0.len(), 64);
        assert!(token.digest() != SessionToken::generate().digest());
        // The map hash is the digest's first eight bytes, so equal digests hash equally.
        use std::hash::BuildHasher;
        let build = std::hash::BuildHasherDefault::<DigestHasher>::default();
        assert_eq!(build.hash_one(token.digest()), build.hash_one(TokenDigest::of(token.expose())));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let token = SessionToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn validity_respects_idle_and_absolute_expiry() {
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(10_000);
        let session = Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            created_at: start,
            last_seen_at: start,
            expires_at: start + Duration::days(7),
            idle_timeout: Duration::hours(12),
            remember_me: false,
            client_ip: None,
            user_agent: None,
        };
        assert!(session.is_valid_at(start + Duration::hours(11)));
        assert!(!session.is_valid_at(start + Duration::hours(12)));
        let active = Session { last_seen_at: start + Duration::days(6) + Duration::hours(23), ..session.clone() };
        assert!(!active.is_valid_at(start + Duration::days(7)));
    }
}
