//! `gatehouse check-config`: validate the configuration and list every problem with where it came from
//! (exit 2), then summarise what it does (including the OpenID Connect issuer and clients), with warnings about
//! settings that are valid but probably not meant: a rule inside another that is looser than it, roles that
//! no account holds (checked against the database when it exists; check-config never creates one), and
//! client redirect URIs on plain http to other machines. It also tries whether `run` could isolate the app
//! here.

use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use crate::config::{Config, SignupMode, config_path};
use crate::domain::access::describe_access;
use crate::isolation::IsolationMode;

pub async fn check_config(config_file: Option<PathBuf>) -> Result<(), CliError> {
    let path = config_path(config_file);
    let config = match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(problems) => {
            let mut message = format!("the configuration has {} problem(s):", problems.len());
            for problem in problems {
                message.push_str(&format!("\n  - {problem}"));
            }
            return Err(CliError::usage(message));
        }
    };
    match &path {
        Some(path) => println!("{}: configuration is valid", path.display()),
        None => println!("no configuration file; the defaults and GATEHOUSE_* variables are valid"),
    }
    println!("  listen      {}", config.server.listen);
    println!("  public_url  {}", config.server.public_url);
    println!("  database    {}", crate::store::redact_url(config.database.url.expose()));
    if let Some(upstream) = &config.upstream.url {
        println!("  upstream    {upstream}");
    }
    let (isolation, cannot_run) = describe_isolation(config.upstream.isolation);
    println!("  isolation   {isolation}");
    println!("  admin role  {}", config.admin.role);
    println!("  sign-in     {}", describe_sign_in(&config));
    println!("  signup      {}", describe_signup(&config));
    println!("  mail        {}", describe_mail(&config));
    if config.access.is_empty() {
        println!("  access      no [[access]] rules: every path needs a signed-in user");
    }
    for rule in config.access.rules() {
        println!("  access      {} -> {}", rule.describe(), describe_access(rule.access()));
    }
    println!("  oidc issuer {} ({})", crate::oidc::issuer_for(&config), config.oidc.signing_algorithm.as_str());
    for client in &config.oidc.clients {
        let kind = if client.is_public() { "public" } else { "confidential" };
        let party = if client.first_party { ", first-party" } else { "" };
        println!("  oidc client {} ({kind}{party}) -> {}", client.client_id, client.redirect_uris.join(", "));
    }
    let mut warnings = config.access.overlap_warnings();
    warnings.extend(plain_http_redirect_warnings(&config));
    warnings.extend(unknown_role_warnings(&config).await);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    // A valid file that `run` would refuse here must fail a pre-deploy check too.
    match cannot_run {
        Some(problem) => Err(CliError::usage(problem)),
        None => Ok(()),
    }
}

/// How people sign in: accounts, or the shared password.
fn describe_sign_in(config: &Config) -> &'static str {
    if config.password.shared.is_some() {
        "one shared password ([password] shared or shared_file): the sign-in page asks only for it"
    } else {
        "accounts (username or email, and password)"
    }
}

/// `[signup] mode` in a sentence, with what it depends on.
fn describe_signup(config: &Config) -> String {
    let signup = &config.signup;
    let verified = if signup.verification_required() { ", addresses verified by mail" } else { "" };
    match signup.mode {
        SignupMode::Closed => "closed: administrators create accounts".to_owned(),
        SignupMode::Invite => format!("invite: people with an invitation or a listed address register{verified}"),
        SignupMode::Open if signup.allowed_email_domains.is_empty() => format!("open: anyone may register{verified}"),
        SignupMode::Open => {
            format!("open: addresses at {} may register{verified}", signup.allowed_email_domains.join(", "))
        }
    }
}

/// Where mail goes: a real server, or the outbox folder (and that nobody receives it there).
fn describe_mail(config: &Config) -> String {
    match &config.mail.smtp {
        Some(smtp) => format!("SMTP {}:{} from {}", smtp.host, smtp.port, config.mail.from),
        None => format!(
            "not sent: written to the outbox folder {} (set [mail] smtp_url to send it)",
            config.mail.outbox.display()
        ),
    }
}

/// `[upstream] isolation`, and whether this machine allows it (tried as `gatehouse run` would); with
/// "required" where it is not available, also why `run` would refuse to start.
fn describe_isolation(mode: IsolationMode) -> (String, Option<String>) {
    let name = match mode {
        IsolationMode::Auto => "auto",
        IsolationMode::Required => "required",
        IsolationMode::Off => {
            return ("off: in `run` mode the app's port is in the machine's network".to_owned(), None);
        }
    };
    match crate::isolation::probe() {
        Ok(()) => (format!("{name}: `run` gives the app a private network here"), None),
        Err(why) if mode == IsolationMode::Required => (
            format!("required, but NOT AVAILABLE here ({why})"),
            Some(format!(
                "[upstream] isolation = \"required\", but this machine cannot give the app a private network ({why}): `gatehouse run` would refuse to start"
            )),
        ),
        Err(why) => (format!("auto, but NOT AVAILABLE here ({why}): `run` would start the app unisolated"), None),
    }
}

/// Redirect URIs on plain http to another machine: codes would cross the network unencrypted.
fn plain_http_redirect_warnings(config: &Config) -> Vec<String> {
    config
        .oidc
        .clients
        .iter()
        .flat_map(|client| client.redirect_uris.iter().map(move |uri| (client, uri)))
        .filter(|(_, uri)| crate::domain::oidc::is_plain_http_to_another_machine(uri))
        .map(|(client, uri)| {
            format!(
                "client '{}' returns to {uri} over plain http: sign-in codes would cross the network unencrypted (use https)",
                client.client_id
            )
        })
        .collect()
}

/// Roles named by access rules or client `allowed_roles` that no account holds (a typo, or accounts not set
/// up yet).
async fn unknown_role_warnings(config: &Config) -> Vec<String> {
    let in_rules = config.access.rules().iter().flat_map(|rule| rule.roles.iter().map(|r| (r.as_str(), "[[access]]")));
    let in_clients =
        config.oidc.clients.iter().flat_map(|c| c.allowed_roles.iter().map(|r| (r.as_str(), "[[oidc.clients]]")));
    let named: Vec<(&str, &str)> =
        in_rules.chain(in_clients).filter(|(role, _)| *role != config.admin.role.as_str()).collect();
    if named.is_empty() {
        return Vec::new();
    }
    let url = config.database.url.expose();
    if let Some(file) = url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest))
        && !std::path::Path::new(file).exists()
    {
        return vec![format!(
            "the database {file} does not exist yet, so the roles named in the rules and clients were not checked"
        )];
    }
    let known = async { crate::store::open(url).await?.known_roles().await.map_err(anyhow::Error::from) };
    let known = match tokio::time::timeout(Duration::from_secs(5), known).await {
        Ok(Ok(known)) => known,
        _ => {
            return vec![
                "could not read the database, so the roles named in the rules and clients were not checked".to_owned(),
            ];
        }
    };
    let mut warnings = Vec::new();
    for (role, place) in named {
        let message = format!("no account holds the role '{role}' named in {place} (a typo?)");
        if !known.iter().any(|k| k == role) && !warnings.contains(&message) {
            warnings.push(message);
        }
    }
    warnings
}
