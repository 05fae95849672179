//! `X-Gatehouse-Assertion`: a short-lived EdDSA-signed JWT carrying the same identity as the plain headers,
//! so code in the app (the `streamlit-gatehouse` helper) can prove the headers came from Gatehouse and not
//! from a client that reached the app some other way. The key pair is generated once and kept in the
//! store, so restarts and other instances sign with the same key; the public half is handed to the app.
//!
//! Signing costs tens of microseconds, so each session's assertion is reused until half its life is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::domain::{SessionId, User};
use crate::store::{SharedStore, StoreError};

/// How long an assertion is valid; the helper also allows for small clock differences.
pub const ASSERTION_LIFETIME: Duration = Duration::minutes(2);
const SETTINGS_KEY: &str = "assertion_ed25519_pkcs8";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'static str,
    /// The public origin this Gatehouse serves, so an assertion made for one app cannot be replayed to another.
    aud: &'a str,
    sub: &'a str,
    email: Option<&'a str>,
    name: &'a str,
    roles: Vec<&'a str>,
    sid: &'a str,
    iat: i64,
    exp: i64,
}

/// A cached assertion: the user's `updated_at` it was made for, the token, and when to sign a new one.
struct CachedAssertion {
    user_version: i64,
    token: Arc<str>,
    refresh_at: OffsetDateTime,
}

#[derive(Clone)]
pub struct AssertionSigner {
    key: Arc<EncodingKey>,
    public_key: Arc<[u8]>,
    cache: Arc<Mutex<HashMap<SessionId, CachedAssertion>>>,
    audience: Arc<str>,
}

impl AssertionSigner {
    /// Loads the signing key from the store, generating it on first start.
    /// `audience` is the public origin (e.g. `https://apps.example.com`), carried as the `aud` claim.
    pub async fn load(store: &SharedStore, audience: &str) -> Result<Self, StoreError> {
        // The seed comes from the OS generator Gatehouse uses everywhere: aws-lc's own generator spends
        // about 20 ms seeding itself on first use, a fifth of the start-up budget, and is not needed after.
        let generation_failed = || StoreError::Database("could not generate an Ed25519 key".into());
        let candidate = Ed25519KeyPair::from_seed_unchecked(&crate::random::bytes(32))
            .map_err(|_| generation_failed())?
            .to_pkcs8()
            .map_err(|_| generation_failed())?;
        let stored = store.setting_or_insert(SETTINGS_KEY, &STANDARD.encode(candidate.as_ref())).await?;
        let pkcs8 =
            STANDARD.decode(stored).map_err(|_| StoreError::Database("stored assertion key is not base64".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| StoreError::Database("stored assertion key is invalid".into()))?;
        Ok(Self {
            key: Arc::new(EncodingKey::from_ed_der(&pkcs8)),
            audience: Arc::from(audience),
            public_key: Arc::from(pair.public_key().as_ref()),
            cache: Arc::default(),
        })
    }

    /// The raw 32-byte Ed25519 public key, base64url without padding (the JWK `x` value).
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_key)
    }

    /// The assertion for this session's user at `now`, reusing a recent one.
    pub fn assertion_for(&self, session: &SessionId, user: &User, now: OffsetDateTime) -> Option<Arc<str>> {
        let version = user.updated_at.unix_timestamp();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cached) = cache.get(session)
            && cached.user_version == version
            && now < cached.refresh_at
        {
            return Some(cached.token.clone());
        }
        let token: Arc<str> = Arc::from(self.sign(session, user, now)?);
        if cache.len() > 50_000 {
            cache.retain(|_, cached| cached.refresh_at > now);
        }
        let refresh_at = now + ASSERTION_LIFETIME / 2;
        cache.insert(session.clone(), CachedAssertion { user_version: version, token: token.clone(), refresh_at });
        Some(token)
    }

    fn sign(&self, session: &SessionId, user: &User, now: OffsetDateTime) -> Option<String> {
        let claims = Claims {
            iss: "gatehouse",
            aud: &self.audience,
            sub: user.username.as_str(),
            email: user.email.as_ref().map(|e| e.as_str()),
            name: user.name_for_display(),
            roles: user.roles.iter().map(|r| r.as_str()).collect(),
            sid: &session.0,
            iat: now.unix_timestamp(),
            exp: (now + ASSERTION_LIFETIME).unix_timestamp(),
        };
        match jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key) {
            Ok(token) => Some(token),
            Err(err) => {
                tracing::error!(error = %err, "could not sign the identity assertion");
                None
            }
        }
    }
}
