//! The application's shared state and the router that serves it: Gatehouse's own pages under
//! `/_gatehouse/`, everything else through the proxy pipeline. Built once per server; tests build it
//! around a temporary database, a movable clock and an echo upstream.

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::auth::{AssertionSigner, CookieNames, CsrfGuard, Login, LoginThrottle, Passwords, RevocationHub, Sessions};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::ThrottlePolicy;
use crate::proxy::upstream::{Upstream, UpstreamStatus};
use crate::store::SharedStore;

pub struct AppState {
    pub config: Arc<Config>,
    pub accounts: Accounts,
    pub admin: crate::admin::Admin,
    /// The OpenID Connect provider.
    pub oidc: crate::oidc::Provider,
    pub store: SharedStore,
    pub clock: SharedClock,
    pub sessions: Sessions,
    pub login: Login,
    pub passwords: Passwords,
    pub csrf: CsrfGuard,
    pub cookies: CookieNames,
    /// `None` when `serve` runs without an app: only Gatehouse's own pages are served.
    pub upstream: Option<Upstream>,
    pub assertions: AssertionSigner,
    pub metrics: PrometheusHandle,
    /// Cancelled when the server shuts down; long-lived tunnels watch it.
    pub shutdown: CancellationToken,
    /// How often an open WebSocket's session is checked again.
    pub session_recheck: std::time::Duration,
}

pub type SharedState = Arc<AppState>;

/// Everything [`AppState::build`] needs besides the configuration.
pub struct Runtime {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub upstream_status: UpstreamStatus,
    pub shutdown: CancellationToken,
    /// See [`AppState::session_recheck`]; [`DEFAULT_SESSION_RECHECK`] outside tests.
    pub session_recheck: std::time::Duration,
    /// How long a validated session is served from memory; [`DEFAULT_SESSION_CACHE_TTL`] outside tests.
    pub session_cache_ttl: std::time::Duration,
    /// `run`: the app reads `st.user` from secret header names, new at every start of it (see
    /// `PrivateIdentityNames`).
    pub private_names: bool,
}

/// Changes made elsewhere (another instance, the CLI) reach the proxy path within this time; changes made
/// through this server take effect at once.
pub const DEFAULT_SESSION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Ending a session through this server closes its tunnels at once; the periodic re-check catches
/// everything else (expiry, `gatehouse users disable` from the shell, another instance) within this time.
pub const DEFAULT_SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    pub async fn build(config: Config, runtime: Runtime) -> anyhow::Result<SharedState> {
        let Runtime { store, clock, upstream_status, shutdown, session_recheck, session_cache_ttl, private_names } =
            runtime;
        let csrf_key = store.setting_or_insert("csrf_hmac_key", &STANDARD.encode(crate::random::bytes(32))).await?;
        let csrf =
            CsrfGuard::new(STANDARD.decode(csrf_key).map_err(|_| anyhow::anyhow!("stored CSRF key is not base64"))?);
        let audience = config.server.public_url.origin().ascii_serialization();
        let assertions = AssertionSigner::load(&store, &audience).await?;
        let passwords = Passwords::new();
        // One cache shard and one upstream pool per worker thread, plus one for everything else.
        let per_worker = config.server.workers + 1;
        let sessions = Sessions::new(
            store.clone(),
            clock.clone(),
            &config.session,
            RevocationHub::default(),
            (session_cache_ttl, per_worker),
        );
        let throttle = LoginThrottle::new(store.clone(), clock.clone(), ThrottlePolicy::default());
        let login = Login::new(store.clone(), clock.clone(), passwords.clone(), sessions.clone(), throttle);
        let upstream = config
            .upstream
            .url
            .as_ref()
            .map(|url| Upstream::new(url, config.upstream.timeout, upstream_status, per_worker, private_names));
        let cookies = CookieNames::new(config.public_is_https());
        let mailer = crate::mail::Mailer::start(&config.mail)?.with_app_name(config.brand.app_name.as_deref());
        if !mailer.uses_smtp() && config.signup.mode != crate::config::SignupMode::Closed {
            tracing::warn!(
                outbox = %config.mail.outbox.display(),
                "no [mail] smtp_url: messages (verification codes, reset links) are written to the outbox folder"
            );
        }
        let config = Arc::new(config);
        let accounts =
            Accounts::new(store.clone(), clock.clone(), passwords.clone(), sessions.clone(), mailer, config.clone());
        let admin = crate::admin::Admin::new(
            store.clone(),
            clock.clone(),
            sessions.clone(),
            passwords.clone(),
            accounts.clone(),
            config.clone(),
        );
        let oidc = crate::oidc::Provider::new(config.clone(), store.clone(), clock.clone(), passwords.clone());
        Ok(Arc::new(AppState {
            oidc,
            config,
            accounts,
            admin,
            store,
            clock,
            sessions,
            login,
            passwords,
            csrf,
            cookies,
            upstream,
            assertions,
            metrics: crate::telemetry::metrics_handle(),
            shutdown,
            session_recheck,
        }))
    }
}

/// The whole HTTP surface.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .nest("/_gatehouse", crate::web::routes(state.clone()))
        // Only Gatehouse's own paths are routed here (see `server::connection`); nothing else is ever served.
        .fallback(|| async { crate::web::error::ErrorReply::not_found().into_response() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::web::context::request_context))
        .with_state(state)
}
