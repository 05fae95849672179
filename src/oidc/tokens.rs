//! The token endpoint (RFC 6749 §4.1.3 and §6, OpenID Connect Core §3.1.3) and userinfo (Core §5.3).
//! A code is used once, within [`CODE_LIFETIME`](super::CODE_LIFETIME), by the client it was issued to,
//! with the same redirect URI and the PKCE verifier of its challenge; a second use revokes every token the
//! first one produced. Refresh tokens rotate on every use, and presenting a rotated one revokes the grant.
//! Every token is tied to the Gatehouse session it was signed in from: when that session ends (sign-out,
//! expiry, an administrator, a password change), the app's tokens stop working with it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::claims::{IdTokenFacts, id_token_claims, user_claims};
use super::clients::credentials;
use super::error::{ErrorCode, OAuthError};
use super::request::Params;
use super::{Provider, REPLAY_MEMORY};
use crate::domain::oidc::{GrantToken, GrantTokenKind, OidcClient, Scopes};
use crate::domain::{AuditEvent, AuditKind, Session, TokenHash, User};
use crate::store::StoreError;

/// Tokens made for a grant, not stored yet.
struct Minted {
    records: Vec<GrantToken>,
    response: Value,
}

/// A failed token request: the error, and whether to challenge for HTTP Basic (the client tried it).
#[derive(Debug)]
pub struct TokenFailure {
    pub error: OAuthError,
    pub basic_challenge: bool,
    /// The client id the request named, for the log.
    pub client_id: Option<String>,
}

impl From<OAuthError> for TokenFailure {
    fn from(error: OAuthError) -> Self {
        Self { error, basic_challenge: false, client_id: None }
    }
}

impl From<StoreError> for TokenFailure {
    fn from(err: StoreError) -> Self {
        OAuthError::from(err).into()
    }
}

impl Provider {
    /// Answers a token request (the form body, the `Authorization` header if any, and the client's address
    /// for throttling failed client authentication) with the JSON token response.
    pub async fn token(
        &self,
        form: &Params,
        authorization: Option<&str>,
        from_ip: &str,
    ) -> Result<Value, TokenFailure> {
        let credentials = credentials(authorization, form)?;
        let named = |mut failure: TokenFailure| {
            failure.client_id = Some(credentials.client_id.chars().take(128).collect());
            failure
        };
        let client = self.clients.authenticate(&credentials, from_ip).await.map_err(|error| {
            named(TokenFailure {
                basic_challenge: credentials.basic && error.code == ErrorCode::InvalidClient,
                error,
                client_id: None,
            })
        })?;
        let answer = match form.get("grant_type") {
            Some("authorization_code") => self.exchange_code(&client, form).await,
            Some("refresh_token") => self.refresh(&client, form).await,
            Some(_) => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "grant_type is not supported")),
            None => Err(OAuthError::invalid_request("grant_type is missing")),
        };
        answer.map_err(|error| named(error.into()))
    }

    async fn exchange_code(&self, client: &OidcClient, form: &Params) -> Result<Value, OAuthError> {
        let code = form.get("code").ok_or(OAuthError::invalid_request("code is missing"))?;
        let hash = TokenHash::of(code);
        let grant = self.usable_grant(GrantTokenKind::Code, &hash, client, "authorization code").await?;
        if form.get("redirect_uri") != grant.redirect_uri.as_deref() {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        match (&grant.code_challenge, form.get("code_verifier")) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
            (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("code_verifier does not match")),
            (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing")),
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant("code_verifier sent for a request without code_challenge"));
            }
            (None, None) => {}
        }
        let (user, session) = self.grant_holder(&grant, client).await?;
        let issued = self.mint(client, &user, &session, &grant, grant.nonce.as_deref()).await?;
        self.redeem(GrantTokenKind::Code, &hash, &grant, issued, "authorization code used twice").await
    }

    async fn refresh(&self, client: &OidcClient, form: &Params) -> Result<Value, OAuthError> {
        let token = form.get("refresh_token").ok_or(OAuthError::invalid_request("refresh_token is missing"))?;
        let hash = TokenHash::of(token);
        let mut grant = self.usable_grant(GrantTokenKind::Refresh, &hash, client, "refresh token").await?;
        if let Some(asked) = form.get("scope") {
            let asked = Scopes::parse(asked);
            if !Scopes::parse(&grant.scope).covers(&asked) || !asked.contains("openid") {
                return Err(OAuthError::new(ErrorCode::InvalidScope, "scope exceeds what was granted"));
            }
            grant.scope = asked.to_string();
        }
        let (user, session) = self.grant_holder(&grant, client).await?;
        // Using an app counts as activity of the Gatehouse session it was signed in from.
        self.store.touch_session(&session.id, self.now()).await?;
        // A refreshed ID token has no nonce (Core §12.2): the nonce belonged to the original request.
        let issued = self.mint(client, &user, &session, &grant, None).await?;
        self.redeem(GrantTokenKind::Refresh, &hash, &grant, issued, "refresh token used twice").await
    }

    /// The stored code or refresh token, if this client may use it now. Nothing is used up here: a token
    /// presented by the wrong client, or too late, stays as it was (so nobody can burn another client's code).
    /// One that was used before is a replay: the grant is revoked.
    async fn usable_grant(
        &self,
        kind: GrantTokenKind,
        hash: &TokenHash,
        client: &OidcClient,
        what: &'static str,
    ) -> Result<GrantToken, OAuthError> {
        let Some(grant) = self.store.grant_token(kind, hash).await? else {
            return Err(OAuthError::invalid_grant(match kind {
                GrantTokenKind::Code => "the authorization code is not valid",
                _ => "the refresh token is not valid",
            }));
        };
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("the grant was issued to another client"));
        }
        if grant.used_at.is_some() {
            self.revoke_after_replay(&grant, &format!("{what} used twice")).await?;
            return Err(OAuthError::invalid_grant("the grant was already used"));
        }
        if self.now() >= grant.expires_at {
            return Err(OAuthError::invalid_grant("the grant has expired"));
        }
        Ok(grant)
    }

    /// The user and the Gatehouse session behind a grant, if both can still be used: the account enabled and
    /// admitted by the client, the session not ended (signing out of Gatehouse, an administrator ending it, a
    /// password change and session expiry all end what apps received from it).
    async fn grant_holder(&self, grant: &GrantToken, client: &OidcClient) -> Result<(User, Session), OAuthError> {
        let ended = OAuthError::invalid_grant("the user's Gatehouse session has ended");
        let Some(session_id) = &grant.session_id else { return Err(ended) };
        let Some(session) = self.store.grant_session(session_id).await?.filter(|s| s.is_valid_at(self.now())) else {
            return Err(ended);
        };
        let user = self
            .usable_user(&grant.user_id, client)
            .await?
            .ok_or(OAuthError::invalid_grant("the user can no longer sign in to this client"))?;
        Ok((user, session))
    }

    /// Uses the code or refresh token up and stores the new tokens in one step; if another request used it
    /// first, this one is a replay.
    async fn redeem(
        &self,
        kind: GrantTokenKind,
        hash: &TokenHash,
        grant: &GrantToken,
        issued: Minted,
        replay: &str,
    ) -> Result<Value, OAuthError> {
        if self.store.redeem_grant_token(kind, hash, self.now(), &issued.records).await? {
            Ok(issued.response)
        } else {
            self.revoke_after_replay(grant, replay).await?;
            Err(OAuthError::invalid_grant("the grant was already used"))
        }
    }

    /// An access token, a refresh token and an ID token for the grant `from` belongs to: the records to
    /// store and the response to send once they are stored.
    async fn mint(
        &self,
        client: &OidcClient,
        user: &User,
        session: &Session,
        from: &GrantToken,
        nonce: Option<&str>,
    ) -> Result<Minted, OAuthError> {
        let now = self.now();
        let lifetimes = &self.config.oidc;
        let access_lifetime = time::Duration::try_from(lifetimes.access_token_lifetime).unwrap_or(time::Duration::HOUR);
        let refresh_lifetime =
            time::Duration::try_from(lifetimes.refresh_token_lifetime).unwrap_or(time::Duration::days(30));
        let access = crate::random::url_token(32);
        let refresh = crate::random::url_token(32);
        // Nothing outlives the session it came from. An access token also ends before the session could idle
        // out, so an app in use refreshes (which counts as activity) in time.
        let stored = |kind, secret: &str, lifetime: time::Duration| GrantToken {
            token_hash: TokenHash::of(secret),
            kind,
            created_at: now,
            expires_at: match kind {
                GrantTokenKind::Access => (now + lifetime).min(session.expires_at).min(now + session.idle_timeout),
                _ => (now + lifetime).min(session.expires_at),
            },
            used_at: None,
            redirect_uri: None,
            nonce: None,
            code_challenge: None,
            ..from.clone()
        };
        let records = vec![
            stored(GrantTokenKind::Access, &access, access_lifetime),
            stored(GrantTokenKind::Refresh, &refresh, refresh_lifetime),
        ];

        let scopes = Scopes::parse(&from.scope);
        let key = self.keys.current(now).await?;
        let claims = id_token_claims(&IdTokenFacts {
            issuer: &self.issuer,
            client_id: &client.client_id,
            user,
            scopes: &scopes,
            session_id: from.session_id.as_ref(),
            auth_time: from.auth_time,
            nonce,
            access_token: &access,
            algorithm: key.algorithm,
            now,
            lifetime: lifetimes.id_token_lifetime,
        });
        let mut header = jsonwebtoken::Header::new(key.jwt_algorithm());
        header.kid = Some(key.kid.clone());
        let id_token = jsonwebtoken::encode(&header, &claims, &key.key).map_err(|err| {
            tracing::error!(error = %err, "could not sign an ID token");
            OAuthError::new(ErrorCode::ServerError, "the server could not sign the ID token")
        })?;
        let response = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": (records[0].expires_at - now).whole_seconds(),
            "refresh_token": refresh,
            "id_token": id_token,
            "scope": scopes.to_string(),
        });
        Ok(Minted { records, response })
    }

    /// A code or refresh token came back a second time: someone else may hold it. Everything issued from
    /// that authorization stops working, and the event is audited.
    async fn revoke_after_replay(&self, grant: &GrantToken, what: &str) -> Result<(), StoreError> {
        let revoked = self.store.revoke_grant(&grant.grant_id).await?;
        tracing::warn!(client = %grant.client_id, revoked, "{what}: the grant's tokens were revoked");
        let user = self.store.user_by_id(&grant.user_id).await?;
        let mut event = AuditEvent::new(self.now(), AuditKind::TokenReplay)
            .actor(format!("client {}", grant.client_id))
            .detail(format!("{what}; {revoked} token(s) revoked"));
        if let Some(user) = user {
            event = event.subject(user.username.as_str());
        }
        self.audit(event).await
    }

    /// The userinfo claims for a bearer access token, or `invalid_token`.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, OAuthError> {
        let invalid = OAuthError::new(ErrorCode::InvalidToken, "the access token is not valid");
        let Some(grant) = self.store.grant_token(GrantTokenKind::Access, &TokenHash::of(access_token)).await? else {
            return Err(invalid);
        };
        if self.now() >= grant.expires_at {
            return Err(invalid);
        }
        let Some(client) = self.clients.find(&grant.client_id).await? else { return Err(invalid) };
        let (user, session) = match self.grant_holder(&grant, &client).await {
            Ok(holder) => holder,
            Err(error) if error.code == ErrorCode::InvalidGrant => return Err(invalid),
            Err(error) => return Err(error),
        };
        // An app reading userinfo is in use: that counts as activity of the session (written once a minute).
        if self.now() - session.last_seen_at >= time::Duration::minutes(1) {
            self.store.touch_session(&session.id, self.now()).await?;
        }
        Ok(Value::Object(user_claims(&user, &Scopes::parse(&grant.scope))))
    }

    /// Deletes expired codes and tokens (kept a while for replay detection) and retired signing keys no ID
    /// token can need any more.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let tokens = self.store.delete_expired_grant_tokens(now - REPLAY_MEMORY).await?;
        let keys = self.store.delete_signing_keys_retired_before(self.keys.retired_keys_expire_before(now)).await?;
        Ok(tokens + keys)
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time. The verifier must be
/// 43-128 unreserved characters.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    use base64::Engine;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::pkce_matches;

    #[test]
    fn pkce_follows_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        assert!(!pkce_matches(challenge, "short"));
    }
}
