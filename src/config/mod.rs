//! Configuration: defaults <- `gatehouse.toml` <- `GATEHOUSE_<SECTION>__<KEY>` environment variables, with
//! `*_file` indirection for secrets. [`Config::load`] validates everything at once and returns either a
//! complete [`Config`] or every problem found, each saying where the bad value came from. Nothing is
//! required: an empty configuration protects an app on `127.0.0.1:8501` with a `gatehouse.db` beside it.

mod access;
mod accounts;
pub mod brand;
mod limits;
mod oidc;
mod reader;
mod secret;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use url::Url;

pub use access::{AdminConfig, AuditConfig};
pub use accounts::{MailConfig, SignupConfig, SignupMode, SmtpSettings, SmtpTls, parse_smtp_url};
pub use limits::ConnectionLimits;
pub use oidc::OidcConfig;
pub use reader::{ConfigProblem, ConfigReader, config_path};
pub use secret::Secret;

use crate::isolation::IsolationMode;
use crate::proxy::headers::HeaderAliasSet;

/// More worker threads than this is a typo, not a machine.
const MAX_WORKERS: i64 = 1024;
/// Short enough to try idle expiry by hand or in a test; anything shorter would end sessions mid-click.
const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub database: DatabaseConfig,
    pub session: SessionConfig,
    pub password: PasswordConfig,
    pub signup: SignupConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    /// `[[access]]`: which paths need which roles, or no sign-in.
    pub access: crate::domain::access::AccessPolicy,
    pub admin: AdminConfig,
    pub audit: AuditConfig,
    /// `[oidc]`: the OpenID Connect provider.
    pub oidc: OidcConfig,
    /// `[server] app_name` and `[theme]`: what the pages call the app, its logo and colour.
    pub brand: brand::BrandConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL people type; decides cookie names, `Secure`, and the origin that forms must come from.
    /// Defaults to `http://<listen>`.
    pub public_url: Url,
    /// Peers whose `X-Forwarded-For` / `-Proto` / `-Host` are believed (a load balancer or nginx in front).
    pub trusted_proxies: Vec<IpNet>,
    /// Threads serving connections, each with its own runtime (`server::workers`); one per core by default.
    pub workers: usize,
    /// Timeouts and connection counts that slow or greedy clients cannot stretch.
    pub limits: ConnectionLimits,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The protected app, for `serve`; `run` sets it to the child's private port.
    pub url: Option<Url>,
    /// How long to wait for the app's response headers before answering 504.
    pub timeout: Duration,
    /// Extra identity header names to send besides `X-Gatehouse-*` (oauth2-proxy, Authelia, Ploomber styles).
    pub header_aliases: Vec<HeaderAliasSet>,
    /// `run` mode: whether the app's port lives in a private network only Gatehouse can reach.
    pub isolation: IsolationMode,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// May hold a password, so it never prints.
    pub url: Secret<String>,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Lifetime of a session when "remember me" is ticked; it is also that session's idle timeout.
    pub remember_me: Duration,
    /// Add the tab script to the app's pages, so open tabs go to the sign-in page when their session ends
    /// (`proxy::page_script`).
    pub follow_open_tabs: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub min_length: usize,
    /// How long a password-reset link works.
    pub reset_link_lifetime: Duration,
    /// `[password] shared` / `shared_file`: one password for everybody instead of accounts (the password, or
    /// a bcrypt/argon2 hash of it), as read once by `accounts::shared_password::parse`.
    pub shared: Option<Secret<crate::import::Password>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `gatehouse=debug,info`.
    pub level: String,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8501";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db";

impl Default for Config {
    fn default() -> Self {
        Config::from_figment(Figment::new()).expect("the defaults are valid")
    }
}

impl Config {
    /// Loads from the file (if any) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, Vec<ConfigProblem>> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(vec![ConfigProblem {
                    key: "(file)".into(),
                    message: format!("configuration file {} does not exist", path.display()),
                    origin: "--config or GATEHOUSE_CONFIG".into(),
                }]);
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only `SECTION__KEY` variables are configuration; GATEHOUSE_CONFIG and test switches are not.
        figment = figment.merge(Env::prefixed("GATEHOUSE_").filter(|key| key.as_str().contains("__")).split("__"));
        Config::from_figment(figment)
    }

    pub fn from_toml_str(toml: &str) -> Result<Config, Vec<ConfigProblem>> {
        Config::from_figment(Figment::from(Toml::string(toml)))
    }

    pub fn from_figment(figment: Figment) -> Result<Config, Vec<ConfigProblem>> {
        let mut r = ConfigReader::new(figment);

        let listen = r
            .parsed("server.listen", |s| {
                s.parse::<SocketAddr>().map_err(|_| format!("'{s}' is not an address like 127.0.0.1:8501"))
            })
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("constant address parses"));
        let public_url = r.parsed("server.public_url", parse_public_url);
        let trusted_proxies = r.string_list("server.trusted_proxies").unwrap_or_default();
        let trusted_proxies = trusted_proxies
            .iter()
            .filter_map(|raw| match parse_net(raw) {
                Ok(net) => Some(net),
                Err(message) => {
                    r.problem("server.trusted_proxies", message);
                    None
                }
            })
            .collect();

        let workers = r.value::<i64>("server.workers").unwrap_or(0);
        if !(0..=MAX_WORKERS).contains(&workers) {
            r.problem("server.workers", format!("must be between 1 and {MAX_WORKERS}, or 0 for one per core"));
        }
        let workers = match usize::try_from(workers) {
            Ok(0) | Err(_) => crate::server::workers::default_count(),
            Ok(n) => n,
        };

        let limits = limits::read_limits(&mut r);

        let upstream_url = r.parsed("upstream.url", parse_upstream_url);
        let timeout = r.duration("upstream.timeout").unwrap_or(Duration::from_secs(60));
        let aliases = r.string_list("upstream.header_aliases").unwrap_or_default();
        let header_aliases = aliases
            .iter()
            .filter_map(|name| match HeaderAliasSet::parse(name) {
                Ok(set) => Some(set),
                Err(message) => {
                    r.problem("upstream.header_aliases", message);
                    None
                }
            })
            .collect();

        let isolation = r.parsed("upstream.isolation", IsolationMode::parse).unwrap_or(IsolationMode::Auto);

        let database_url = r
            .parsed("database.url", |s| crate::store::check_database_url(s).map(|()| s.to_owned()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());

        let idle_timeout = r.duration("session.idle_timeout").unwrap_or(Duration::from_secs(12 * 3600));
        let absolute_timeout = r.duration("session.absolute_timeout").unwrap_or(Duration::from_secs(7 * 86400));
        let remember_me = r.duration("session.remember_me").unwrap_or(Duration::from_secs(30 * 86400));
        if idle_timeout < MIN_IDLE_TIMEOUT {
            r.problem("session.idle_timeout", "must be at least 10 seconds");
        }
        for (key, value) in [("session.absolute_timeout", absolute_timeout), ("session.remember_me", remember_me)] {
            if value < Duration::from_secs(60) {
                r.problem(key, "must be at least one minute");
            }
        }
        let follow_open_tabs = r.value::<bool>("session.follow_open_tabs").unwrap_or(true);
        if idle_timeout > absolute_timeout {
            r.problem("session.idle_timeout", "is longer than session.absolute_timeout, so it would never apply");
        }

        let min_length = r.value::<i64>("password.min_length").unwrap_or(8);
        if !(1..=128).contains(&min_length) {
            r.problem("password.min_length", "must be between 1 and 128 (NIST SP 800-63B recommends at least 8)");
        }

        let reset_link_lifetime = r.duration("password.reset_link_lifetime").unwrap_or(Duration::from_secs(30 * 60));
        if !(Duration::from_secs(60)..=Duration::from_secs(86400)).contains(&reset_link_lifetime) {
            r.problem("password.reset_link_lifetime", "must be between one minute and one day");
        }
        let min_length = usize::try_from(min_length).unwrap_or(8);
        let shared = r.string("password.shared").and_then(|raw| {
            match crate::accounts::shared_password::parse(&raw, min_length) {
                Ok(password) => Some(Secret::new(password)),
                Err(err) => {
                    r.problem("password.shared", err.to_string());
                    None
                }
            }
        });
        let signup = accounts::read_signup(&mut r);
        let mail = accounts::read_mail(&mut r, public_url.as_ref());

        let access = access::read_access(&mut r);
        let admin = access::read_admin(&mut r);
        let audit = access::read_audit(&mut r);
        let oidc = oidc::read_oidc(&mut r);
        let brand = brand::read_brand(&mut r);

        let format = r
            .parsed("log.format", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("'{other}' is not a log format; use \"text\" or \"json\"")),
            })
            .unwrap_or(LogFormat::Text);
        let level = r.string("log.level").unwrap_or_else(|| "info".to_owned());
        if crate::telemetry::log_filter(&level).is_none() {
            r.problem(
                "log.level",
                format!("'{level}' is not a log filter; use e.g. \"info\" or \"gatehouse=debug,info\""),
            );
        }

        let problems = r.finish();
        if !problems.is_empty() {
            return Err(problems);
        }
        let public_url = public_url.unwrap_or_else(|| default_public_url(listen));
        Ok(Config {
            server: ServerConfig { listen, public_url, trusted_proxies, workers, limits },
            upstream: UpstreamConfig { url: upstream_url, timeout, header_aliases, isolation },
            database: DatabaseConfig { url: Secret::new(database_url) },
            session: SessionConfig { idle_timeout, absolute_timeout, remember_me, follow_open_tabs },
            password: PasswordConfig { min_length, reset_link_lifetime, shared },
            signup,
            mail,
            log: LogConfig { format, level },
            access,
            admin,
            audit,
            oidc,
            brand,
        })
    }

    /// Replaces the listen address and keeps a derived public URL in step with it.
    pub fn set_listen(&mut self, listen: SocketAddr) {
        if self.server.public_url == default_public_url(self.server.listen) {
            self.server.public_url = default_public_url(listen);
        }
        self.server.listen = listen;
    }

    pub fn public_is_https(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }
}

/// `http://<listen>/`, with 127.0.0.1 for a wildcard listen address (a link to 0.0.0.0 does not work in
/// every browser); set `public_url` for the name people really use.
/// A bare word in a `tracing` filter names a module, so a typo like "verbose" silently turns logging off.
/// Accept level names, and `target=level` directives.
fn default_public_url(listen: SocketAddr) -> Url {
    let host =
        if listen.ip().is_unspecified() { SocketAddr::new([127, 0, 0, 1].into(), listen.port()) } else { listen };
    Url::parse(&format!("http://{host}/")).expect("an address makes a valid URL")
}

pub fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL ({e}); write it like https://apps.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("'{raw}' must be an http:// or https:// URL with a host"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(format!("'{raw}' must not have a path or query: Gatehouse serves the whole origin"));
    }
    Ok(url)
}

pub fn parse_upstream_url(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL ({e}); write it like http://127.0.0.1:8502"))?;
    if url.scheme() != "http" || url.host().is_none() {
        return Err(format!(
            "'{raw}' must be an http:// URL with a host (TLS to the app is not supported; keep the app on a private address)"
        ));
    }
    if url.port_or_known_default().is_none() {
        return Err(format!("'{raw}' has no port"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(format!(
            "'{raw}' has a path or query; Gatehouse forwards each request's own path, so give only http://HOST:PORT"
        ));
    }
    Ok(url)
}

fn parse_net(raw: &str) -> Result<IpNet, String> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{raw}' is not an IP address or CIDR range like 10.0.0.0/8"))
}

/// Loads the configuration for a CLI command, printing every problem and exiting with status 2 if invalid.
pub fn load_or_exit(explicit: Option<PathBuf>) -> Config {
    let path = config_path(explicit);
    match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("gatehouse: the configuration has {} problem(s):", problems.len());
            for problem in &problems {
                eprintln!("  - {problem}");
            }
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_is_complete() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.server.public_url.as_str(), "http://127.0.0.1:8501/");
        assert_eq!(config.database.url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.session.remember_me, Duration::from_secs(30 * 86400));
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let problems = Config::from_toml_str(
            r#"
            [server]
            listen = "nope"
            colour = "red"
            [session]
            idle_timeout = "forever"
            [nonsense]
            x = 1
            "#,
        )
        .unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.listen"), "{problems:?}");
        assert!(keys.contains(&"server.colour"), "{problems:?}");
        assert!(keys.contains(&"session.idle_timeout"), "{problems:?}");
        assert!(keys.contains(&"nonsense"), "{problems:?}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "sqlite:///tmp/secret-path.db\n").unwrap();
        let config =
            Config::from_toml_str(&format!("[database]\nurl_file = {:?}\n", file.display().to_string())).unwrap();
        assert_eq!(config.database.url.expose(), "sqlite:///tmp/secret-path.db");
        assert!(!format!("{config:?}").contains("secret-path"));
    }

    #[test]
    fn workers_default_to_one_per_core_and_must_be_a_sensible_count() {
        assert_eq!(Config::from_toml_str("").unwrap().server.workers, crate::server::workers::default_count());
        assert_eq!(
            Config::from_toml_str("[server]\nworkers = 0\n").unwrap().server.workers,
            crate::server::workers::default_count()
        );
        assert_eq!(Config::from_toml_str("[server]\nworkers = 3\n").unwrap().server.workers, 3);
        for bad in ["-1", "5000", "\"many\""] {
            let problems = Config::from_toml_str(&format!("[server]\nworkers = {bad}\n")).unwrap_err();
            assert_eq!(problems[0].key, "server.workers", "{bad}: {problems:?}");
        }
    }

    #[test]
    fn log_levels_must_be_levels_or_directives() {
        assert!(Config::from_toml_str("[log]\nlevel = \"verbose\"\n").is_err());
        assert!(Config::from_toml_str("[log]\nlevel = \"debug\"\n").is_ok());
        assert!(Config::from_toml_str("[log]\nlevel = \"gatehouse=debug,warn\"\n").is_ok());
        // Found by the config fuzz target: tracing-subscriber's parser panicked on it; now a config problem.
        let problems = Config::from_toml_str("[log]\nlevel = \" t\u{fffd}=n\u{fffd}@\"\n").unwrap_err();
        assert_eq!(problems[0].key, "log.level", "{problems:?}");
        assert!(crate::telemetry::log_filter("gatehouse=d\u{e9}bug").is_none());
        assert!(crate::telemetry::log_filter("gatehouse=debug,info").is_some());
        assert!(crate::telemetry::log_filter("gatehouse::proxy=trace,WARN").is_some());
        // Found by the config fuzz target: span field filters are regular expressions; this one took 37 s.
        let slow = "c[[o>>~>>>>>>>>>>>>>>>>>>>>>>=>>>>>>>>>>>>>>>>>>>f2irst_pa>>>>>>>>.|;t0[{0ojdc.c/qzzzZzzz=zsig......+....@.........>>>~>>>>>oidt.}zz{|zzzzl";
        let started = std::time::Instant::now();
        assert!(crate::telemetry::log_filter(slow).is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        for refused in ["gatehouse", "[span]=debug", "gatehouse[{x=1}]=info", "=info", "info,,verbose", ""] {
            assert!(crate::telemetry::log_filter(refused).is_none(), "{refused:?}");
        }
    }

    #[test]
    fn durations_accept_units_and_seconds() {
        let config = Config::from_toml_str("[session]\nidle_timeout = \"90m\"\nabsolute_timeout = 86400\n").unwrap();
        assert_eq!(config.session.idle_timeout, Duration::from_secs(90 * 60));
        assert_eq!(config.session.absolute_timeout, Duration::from_secs(86400));
    }

    #[test]
    fn public_url_must_be_an_origin() {
        assert!(Config::from_toml_str("[server]\npublic_url = \"https://apps.example.com/app\"\n").is_err());
        let config = Config::from_toml_str("[server]\npublic_url = \"https://apps.example.com\"\n").unwrap();
        assert!(config.public_is_https());
    }

    #[test]
    fn signup_and_mail_default_to_closed_and_the_outbox() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config.signup.mode, SignupMode::Closed);
        assert!(config.signup.require_email_verification);
        assert!(config.mail.smtp.is_none());
        assert_eq!(config.password.reset_link_lifetime, Duration::from_secs(1800));
    }

    #[test]
    fn signup_and_mail_problems_are_listed() {
        let problems = Config::from_toml_str(
            r#"
            [signup]
            mode = "sometimes"
            invited_emails = ["not-an-address"]
            pending_lifetime = "5m"
            [mail]
            smtp_url = "smtp://u:hunter2@mail.example.com?tls=none"
            from = "not an address"
            "#,
        )
        .unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in ["signup.mode", "signup.invited_emails", "signup.pending_lifetime", "mail.smtp_url", "mail.from"] {
            assert!(keys.contains(&key), "{key} not reported: {problems:?}");
        }
        assert!(!format!("{problems:?}").contains("hunter2"), "the SMTP password never appears in messages");
        let problems = Config::from_toml_str("[signup]\nallowed_email_domains = [\"corp.example\"]\n").unwrap_err();
        assert_eq!(problems[0].key, "signup.allowed_email_domains", "domains only apply to open mode");
        let unverified = "[signup]\nmode = \"open\"\nallowed_email_domains = [\"corp.example\"]\nrequire_email_verification = false\n";
        assert_eq!(Config::from_toml_str(unverified).unwrap_err()[0].key, "signup.allowed_email_domains");
    }

    #[test]
    fn invite_mode_always_verifies() {
        let config =
            Config::from_toml_str("[signup]\nmode = \"invite\"\nrequire_email_verification = false\n").unwrap();
        assert!(config.signup.verification_required());
    }
}
