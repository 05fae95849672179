//! Shared test harness: Gatehouse started in-process on port 0 with a temporary SQLite database, a
//! movable clock and (usually) the echo upstream; and a tiny cookie-keeping browser on top of reqwest.
#![allow(dead_code)]

pub mod cli;
pub mod cluster;
pub mod mail;
pub mod oidc;
pub mod postgres;
pub mod raw;
pub mod run;
pub mod upstream;
pub mod websocket;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse::app::{AppState, Runtime, SharedState};
use gatehouse::auth::password::hash_blocking;
pub use gatehouse::clock::{Clock, ManualClock};
use gatehouse::config::Config;
use gatehouse::domain::{NewUser, Role, User, Username};
use gatehouse::proxy::upstream::{UpstreamState, UpstreamStatus};
use gatehouse::store::SharedStore;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct TestGatehouse {
    pub addr: SocketAddr,
    pub state: SharedState,
    pub clock: Arc<ManualClock>,
    pub dir: Arc<TempDir>,
    pub db_url: String,
    extra_toml: String,
    cache_ttl: std::time::Duration,
    session_recheck: std::time::Duration,
    upstream: Option<SocketAddr>,
    shutdown: CancellationToken,
    /// Remembers which messages a test has read, so `next` returns each once.
    outbox: Arc<mail::Outbox>,
}

/// How often open WebSockets re-check their session in tests: short, so tests of the re-check are quick.
const DEFAULT_RECHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// A temporary directory with the path of a SQLite database in it (created on first open).
fn fresh_database() -> (Arc<TempDir>, String) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    (dir, db_url)
}

impl TestGatehouse {
    /// Gatehouse in front of `upstream` with default settings.
    pub async fn start(upstream: Option<SocketAddr>) -> Self {
        Self::start_with(upstream, "").await
    }

    /// Gatehouse in front of `upstream` with the validated-session cache on (`ttl`, measured on the test clock).
    pub async fn start_cached(upstream: Option<SocketAddr>, ttl: std::time::Duration) -> Self {
        let (dir, db_url) = fresh_database();
        let clock = Arc::new(ManualClock::starting_now());
        Self::launch(dir, db_url, clock, upstream, String::new(), ttl, DEFAULT_RECHECK).await
    }

    /// One of several instances sharing the database at `db_url` (each with its own clock, cache and
    /// connections, as separate processes would have), with the session cache on for `cache_ttl` of test
    /// clock and open WebSockets re-checked only every `recheck`.
    pub async fn start_instance(
        db_url: &str,
        upstream: Option<SocketAddr>,
        cache_ttl: std::time::Duration,
        recheck: std::time::Duration,
    ) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::starting_now());
        Self::launch(dir, db_url.to_owned(), clock, upstream, String::new(), cache_ttl, recheck).await
    }

    /// Gatehouse on the database at `db_url` (e.g. a PostgreSQL [`postgres::TestSchema`]), otherwise as
    /// [`start_with`](Self::start_with).
    pub async fn start_on(db_url: Option<String>, upstream: Option<SocketAddr>, extra_toml: &str) -> Self {
        let (dir, sqlite_url) = fresh_database();
        let clock = Arc::new(ManualClock::starting_now());
        let db_url = db_url.unwrap_or(sqlite_url);
        let no_cache = std::time::Duration::ZERO;
        Self::launch(dir, db_url, clock, upstream, extra_toml.to_owned(), no_cache, DEFAULT_RECHECK).await
    }

    /// Gatehouse in front of `upstream`, with extra configuration as dotted TOML keys (`session.idle_timeout = "1h"`).
    pub async fn start_with(upstream: Option<SocketAddr>, extra_toml: &str) -> Self {
        let (dir, db_url) = fresh_database();
        let clock = Arc::new(ManualClock::starting_now());
        let no_cache = std::time::Duration::ZERO;
        Self::launch(dir, db_url, clock, upstream, extra_toml.to_owned(), no_cache, DEFAULT_RECHECK).await
    }

    async fn launch(
        dir: Arc<TempDir>,
        db_url: String,
        clock: Arc<ManualClock>,
        upstream: Option<SocketAddr>,
        extra_toml: String,
        cache_ttl: std::time::Duration,
        session_recheck: std::time::Duration,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Dotted keys only, so that the extra TOML of a test can add keys to any section. Two workers, as on
        // a 2-core server: connections of one test land on different threads, so revocation and the session
        // cache are exercised across threads.
        let upstream_toml = upstream.map(|u| format!("upstream.url = \"http://{u}\"\n")).unwrap_or_default();
        // Mail goes to the outbox folder, where `outbox()` reads it.
        let outbox = dir.path().join("outbox");
        let toml = format!(
            "server.listen = \"{addr}\"\nserver.public_url = \"http://{addr}\"\nserver.workers = 2\ndatabase.url = \"{db_url}\"\nmail.outbox = \"{}\"\n{upstream_toml}{extra_toml}",
            outbox.display()
        );
        let config =
            Config::from_toml_str(&toml).unwrap_or_else(|problems| panic!("test config invalid: {problems:?}"));
        let store = gatehouse::store::open(&db_url).await.unwrap();
        let shutdown = CancellationToken::new();
        let runtime = Runtime {
            store,
            clock: clock.clone(),
            upstream_status: UpstreamStatus::new(UpstreamState::Ready),
            shutdown: shutdown.clone(),
            session_recheck,
            // Off by default so tests see store changes at once; tests/sessions.rs covers the cache.
            session_cache_ttl: cache_ttl,
            private_names: false,
        };
        let state = AppState::build(config, runtime).await.unwrap();
        tokio::spawn(gatehouse::serve(listener, state.clone()));
        let outbox = Arc::new(mail::Outbox::new(outbox));
        Self { addr, state, clock, dir, db_url, extra_toml, cache_ttl, session_recheck, upstream, shutdown, outbox }
    }

    /// Stops this server and starts a new one on the same database and clock (a new port).
    pub async fn restart(self) -> Self {
        let (dir, db_url, clock, upstream, extra_toml) =
            (self.dir.clone(), self.db_url.clone(), self.clock.clone(), self.upstream, self.extra_toml.clone());
        let (cache_ttl, recheck) = (self.cache_ttl, self.session_recheck);
        drop(self);
        Self::launch(dir, db_url, clock, upstream, extra_toml, cache_ttl, recheck).await
    }

    /// The messages Gatehouse has "sent" (written to the outbox folder).
    pub fn outbox(&self) -> &mail::Outbox {
        &self.outbox
    }

    pub fn store(&self) -> &SharedStore {
        &self.state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn add_user(&self, username: &str, password: &str, roles: &[&str]) -> User {
        let new = NewUser {
            username: Username::parse(username).unwrap(),
            email: Some(gatehouse::domain::Email::parse(&format!("{username}@example.com")).unwrap()),
            display_name: format!("{} Example", username[..1].to_uppercase() + &username[1..]),
            roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
            password_hash: Some(hash_blocking(password).unwrap()),
            email_verified: true,
            pending_until: None,
            disabled: false,
        };
        self.store().create_user(new, self.clock.now()).await.unwrap()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.addr)
    }

    /// A browser signed in as `username`.
    pub async fn signed_in(&self, username: &str, password: &str) -> Browser {
        let mut browser = self.browser();
        let response = browser.sign_in(username, password, false).await;
        assert_eq!(response.status(), 303, "sign-in failed");
        browser
    }
}

impl Drop for TestGatehouse {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const TEST_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) GatehouseTests/1.0";

/// A cookie-keeping HTTP client that behaves like a browser loading pages (`Sec-Fetch-Mode: navigate`).
/// A clone is another tab of the same browser at that moment.
#[derive(Clone)]
pub struct Browser {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Self {
        // A user agent like a browser's, so what Gatehouse records about clients can be checked.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(TEST_USER_AGENT)
            .build()
            .unwrap();
        Self { addr, client, cookies: BTreeMap::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("gatehouse_session")
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, val) = pair.split_once('=').unwrap();
            let expired = text.contains("Max-Age=0");
            if expired {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    fn page_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("text/html,application/xhtml+xml"));
        headers.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        if !self.cookies.is_empty() {
            headers.insert("cookie", HeaderValue::from_str(&self.cookie_header()).unwrap());
        }
        headers
    }

    /// A page load.
    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// A page load with extra (or replaced) headers.
    pub async fn get_with(&mut self, path: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut headers = self.page_headers();
        for (name, value) in extra {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        let response = self.client.get(self.url(path)).headers(headers).send().await.unwrap();
        self.remember(&response);
        response
    }

    /// Submits a form like a same-origin browser (Origin and Sec-Fetch-Site set).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_with(
            path,
            fields,
            &[("origin", &format!("http://{}", self.addr)), ("sec-fetch-site", "same-origin")],
        )
        .await
    }

    pub async fn post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut headers = self.page_headers();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        for (name, value) in extra {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        let body = serde_urlencoded::to_string(fields).unwrap();
        let response = self.client.post(self.url(path)).headers(headers).body(body).send().await.unwrap();
        self.remember(&response);
        response
    }

    /// Loads a page and returns the CSRF token of its form.
    pub async fn csrf_token(&mut self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        extract_csrf(&html)
    }

    pub async fn sign_in(&mut self, username: &str, password: &str, remember: bool) -> reqwest::Response {
        self.sign_in_to(username, password, remember, "/").await
    }

    pub async fn sign_in_to(&mut self, username: &str, password: &str, remember: bool, rd: &str) -> reqwest::Response {
        let token = self.csrf_token("/_gatehouse/login").await;
        let mut fields =
            vec![("username", username), ("password", password), ("csrf_token", token.as_str()), ("rd", rd)];
        if remember {
            fields.push(("remember", "1"));
        }
        self.post_form("/_gatehouse/login", &fields).await
    }

    pub async fn sign_out(&mut self) -> reqwest::Response {
        let token = self.csrf_token("/_gatehouse/logout").await;
        self.post_form("/_gatehouse/logout", &[("csrf_token", &token)]).await
    }

    /// An API-style request (no page load): gets 401 JSON rather than a redirect when not signed in.
    pub async fn api_get(&mut self, path: &str) -> reqwest::Response {
        let mut request =
            self.client.get(self.url(path)).header("accept", "application/json").header("sec-fetch-mode", "cors");
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        request.send().await.unwrap()
    }

    /// The echo upstream's report of what it received for a proxied page load.
    pub async fn echo(&mut self, path: &str, extra: &[(&str, &str)]) -> serde_json::Value {
        let response = self.get_with(path, extra).await;
        assert_eq!(response.status(), 200, "request to {path} was not proxied");
        response.json().await.unwrap()
    }
}

pub fn extract_csrf(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF token in page: {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// All values of header `name` (lower case) in an echo report.
pub fn echoed_header(report: &serde_json::Value, name: &str) -> Vec<String> {
    report["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}
