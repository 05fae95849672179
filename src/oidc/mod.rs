//! The OpenID Connect provider: apps anywhere sign people in with `st.login()` (or any OpenID Connect
//! client) against Gatehouse's users, roles and sessions. Authorization code flow only, with PKCE; ID tokens
//! signed with a rotating key; opaque access and refresh tokens stored by hash; refresh tokens rotated with
//! reuse detection; RP-initiated logout.
//!
//! [`Provider`] holds the protocol decisions; `web::oidc` turns HTTP into calls on it and its answers into
//! redirects, pages and JSON.

pub mod claims;
pub mod clients;
pub mod error;
pub mod keys;
pub mod logout;
pub mod request;
pub mod tokens;

use std::sync::Arc;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::auth::{Authenticated, ClientInfo, Passwords};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::oidc::{Consent, GrantToken, GrantTokenKind, Scopes, SigningAlgorithm};
use crate::domain::{AuditEvent, AuditKind, TokenHash, User};
use crate::store::{SharedStore, StoreError};
use clients::Clients;
use error::{ErrorCode, OAuthError};
use keys::SigningKeys;
use request::{AuthorizationRequest, Params, Rejection};

/// Authorization codes live this long (RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty for a
/// redirect and a back-channel call).
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

/// Used codes and rotated refresh tokens are kept this long past their expiry, so a late replay is still
/// recognised (and revokes what the code or token led to) instead of looking merely unknown.
pub const REPLAY_MEMORY: Duration = Duration::hours(1);

/// How long after a forced sign-in (`prompt=login`, `max_age`) its return to the authorization endpoint
/// still counts.
pub const FORCED_SIGN_IN_WINDOW: Duration = Duration::minutes(10);

/// Tolerated difference between the clocks of instances (one sets `login_after`, another may check it).
const CLOCK_SKEW: Duration = Duration::seconds(5);

/// Path of the authorization endpoint; the sign-in page returns here.
pub const AUTHORIZE_PATH: &str = "/_gatehouse/oidc/authorize";

#[derive(Clone)]
pub struct Provider {
    store: SharedStore,
    clock: SharedClock,
    config: Arc<Config>,
    clients: Clients,
    keys: SigningKeys,
    issuer: Arc<str>,
}

/// See [`Provider::client_for_return_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturningClient {
    pub name: String,
    pub origin: String,
}

/// What the authorization endpoint does next for a checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the browser to the sign-in page; `login_after` when an existing sign-in is too old or
    /// `prompt=login` asked for a new one.
    SignIn { login_after: Option<i64> },
    /// Back to the client with an error (`prompt=none` could not be honoured, ...).
    Refuse(OAuthError),
    /// The user lacks every role the client admits.
    NotAdmitted,
    /// Ask the user whether the client may have these scopes.
    Consent,
    /// Issue a code.
    Issue,
}

impl Provider {
    pub fn new(config: Arc<Config>, store: SharedStore, clock: SharedClock, passwords: Passwords) -> Self {
        let issuer = issuer_for(&config);
        let keys = SigningKeys::new(store.clone(), config.oidc.signing_algorithm, config.oidc.id_token_lifetime);
        let clients = Clients::new(config.clone(), store.clone(), clock.clone(), passwords);
        Self { store, clock, config, clients, keys, issuer: Arc::from(issuer) }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The discovery document (OpenID Connect Discovery 1.0 §3).
    pub fn discovery(&self) -> Value {
        let endpoint = |path: &str| format!("{}/oidc/{path}", self.issuer);
        let algorithms: Vec<&str> = SigningAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        json!({
            "issuer": self.issuer.as_ref(),
            "authorization_endpoint": endpoint("authorize"),
            "token_endpoint": endpoint("token"),
            "userinfo_endpoint": endpoint("userinfo"),
            "jwks_uri": endpoint("jwks"),
            "end_session_endpoint": endpoint("logout"),
            "scopes_supported": crate::domain::oidc::SUPPORTED_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algorithms,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_supported": [
                "sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
                "name", "preferred_username", "updated_at", "email", "email_verified", "roles"
            ],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// Checks an authorization request (the client is looked up first; see [`request::check`]).
    pub async fn authorization_request(&self, params: &Params) -> Result<AuthorizationRequest, Rejection> {
        let client = match params.get("client_id") {
            Some(id) => self.clients.find(id).await.map_err(|err| {
                tracing::error!(error = %err, "could not look up a client");
                Rejection::Page("Gatehouse could not check this request just now. Please try again.")
            })?,
            None => None,
        };
        request::check(params, client)
    }

    /// What to do with a checked request for the browser's session (if any).
    pub async fn next_step(
        &self,
        request: &AuthorizationRequest,
        session: Option<&Authenticated>,
    ) -> Result<Step, StoreError> {
        let now = self.clock.now().unix_timestamp();
        let refuse = |code, description| Ok(Step::Refuse(OAuthError::new(code, description)));
        let Some(session) = session else {
            if request.prompt.none {
                return refuse(ErrorCode::LoginRequired, "the user is not signed in");
            }
            // With prompt=login or max_age, the sign-in about to happen is the fresh one they ask for: say so,
            // or a slow return trip would make max_age ask a second time.
            let forced = request.prompt.login || request.max_age.is_some();
            return Ok(Step::SignIn { login_after: (forced || request.login_after.is_some()).then_some(now) });
        };
        let auth_time = session.session.created_at.unix_timestamp();
        // `login_after` comes back from the sign-in page Gatehouse sent the browser to. It counts only when it
        // is recent and not in the future, so a client cannot switch `prompt=login` off with an old value or
        // loop the user with a future one; and once it is satisfied, `max_age` is not checked again (the
        // sign-in just happened, however long the way back took, up to FORCED_SIGN_IN_WINDOW).
        let skew = CLOCK_SKEW.whole_seconds();
        let fresh_sign_in = request.login_after.is_some_and(|after| {
            (now - FORCED_SIGN_IN_WINDOW.whole_seconds()..=now + skew).contains(&after) && auth_time + skew >= after
        });
        let must_sign_in = !fresh_sign_in
            && (request.prompt.login
                || request.login_after.is_some()
                || request.max_age.is_some_and(|max_age| now - auth_time > max_age));
        if must_sign_in {
            if request.prompt.none {
                return refuse(ErrorCode::LoginRequired, "the user must sign in again");
            }
            return Ok(Step::SignIn { login_after: Some(now) });
        }
        if request.prompt.none
            && let Some(hint) = &request.id_token_hint
            && self.verify_id_token_hint(hint).await.is_none_or(|hint| hint.sub != session.user.id.0)
        {
            return refuse(ErrorCode::LoginRequired, "the signed-in user is not the one the client expects");
        }
        if !request.client.admits(&session.user) {
            if request.prompt.none {
                return refuse(ErrorCode::AccessDenied, "the user may not use this client");
            }
            return Ok(Step::NotAdmitted);
        }
        if self.needs_consent(request, &session.user).await? {
            if request.prompt.none {
                return refuse(ErrorCode::ConsentRequired, "the user has not agreed to this client's request");
            }
            return Ok(Step::Consent);
        }
        Ok(Step::Issue)
    }

    async fn needs_consent(&self, request: &AuthorizationRequest, user: &User) -> Result<bool, StoreError> {
        if request.prompt.consent {
            return Ok(true);
        }
        if request.client.first_party {
            return Ok(false);
        }
        let granted = self.store.consent(&user.id, &request.client.client_id).await?;
        Ok(!granted.is_some_and(|consent| Scopes::parse(&consent.scope).covers(&request.scopes)))
    }

    /// Remembers that the user agreed to the request's scopes (added to what they agreed to before).
    pub async fn remember_consent(
        &self,
        request: &AuthorizationRequest,
        user: &User,
        client: &ClientInfo,
    ) -> Result<(), StoreError> {
        let before = self.store.consent(&user.id, &request.client.client_id).await?;
        let previous = before.map(|c| c.scope).unwrap_or_default();
        let scope = Scopes::parse(&format!("{previous} {}", request.scopes)).to_string();
        let now = self.clock.now();
        self.store
            .save_consent(&Consent {
                user_id: user.id.clone(),
                client_id: request.client.client_id.clone(),
                scope: scope.clone(),
                granted_at: now,
            })
            .await?;
        self.audit(
            AuditEvent::new(now, AuditKind::ConsentGranted)
                .actor(user.username.as_str())
                .subject(user.username.as_str())
                .detail(format!("client {} scope {scope}", request.client.client_id))
                .client(client.ip.clone(), client.user_agent.clone()),
        )
        .await
    }

    /// Issues an authorization code for the signed-in user and returns the client's redirect URL with it.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        signed_in: &Authenticated,
        client: &ClientInfo,
    ) -> Result<String, StoreError> {
        let now = self.clock.now();
        let code = crate::random::url_token(32);
        self.store
            .create_grant_token(&GrantToken {
                token_hash: TokenHash::of(&code),
                kind: GrantTokenKind::Code,
                grant_id: crate::random::hex_token(16),
                client_id: request.client.client_id.clone(),
                user_id: signed_in.user.id.clone(),
                session_id: Some(signed_in.session.id.clone()),
                scope: request.scopes.to_string(),
                auth_time: signed_in.session.created_at,
                created_at: now,
                expires_at: now + CODE_LIFETIME,
                used_at: None,
                redirect_uri: Some(request.redirect_uri.clone()),
                nonce: request.nonce.clone(),
                code_challenge: request.code_challenge.clone(),
            })
            .await?;
        let username = signed_in.user.username.as_str();
        self.audit(
            AuditEvent::new(now, AuditKind::AppSignIn)
                .actor(username)
                .subject(username)
                .detail(format!("client {}", request.client.client_id))
                .client(client.ip.clone(), client.user_agent.clone()),
        )
        .await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", &self.issuer));
        Ok(request::redirect_with(&request.redirect_uri, &params))
    }

    /// The client's redirect URL carrying an error (and `state`, and `iss` per RFC 9207).
    pub fn error_redirect(&self, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> String {
        let mut params = vec![("error", error.code.as_str()), ("error_description", error.description)];
        if let Some(state) = state {
            params.push(("state", state));
        }
        params.push(("iss", &self.issuer));
        request::redirect_with(redirect_uri, &params)
    }

    /// The client an authorization request in a return path (the sign-in page's `rd`) comes from: its name
    /// for the page, and the origin of its redirect URI. Chromium applies CSP `form-action` to every redirect
    /// after a form is sent, so the sign-in form must allow that origin — only when the redirect URI is
    /// registered for the client the request names.
    pub async fn client_for_return_path(&self, return_path: &str) -> Option<ReturningClient> {
        let query = return_path.strip_prefix(AUTHORIZE_PATH)?.strip_prefix('?')?;
        let params = Params::parse(query).ok()?;
        let client = self.clients.find(params.get("client_id")?).await.ok().flatten();
        let (client, redirect_uri) = request::check_client(&params, client).ok()?;
        Some(ReturningClient { name: client.name, origin: origin_of(&redirect_uri)? })
    }

    /// Whether the user can still use what was granted: the account exists, is enabled and finished
    /// registering, and holds a role the client admits.
    async fn usable_user(
        &self,
        user_id: &crate::domain::UserId,
        client: &crate::domain::oidc::OidcClient,
    ) -> Result<Option<User>, StoreError> {
        let user = self.store.user_by_id(user_id).await?;
        Ok(user.filter(|u| !u.disabled && !u.is_pending() && client.admits(u)))
    }

    async fn audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.store.append_audit(&event).await
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// `<public_url>/_gatehouse`, without a trailing slash: the `iss` of every ID token.
pub fn issuer_for(config: &Config) -> String {
    format!("{}/_gatehouse", config.server.public_url.as_str().trim_end_matches('/'))
}

/// `scheme://host[:port]` of a URL, for CSP.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}
