//! Command-line interface: argument definitions and dispatch. One file per command group; each returns
//! `Result<(), CliError>` so `main` can map usage problems to exit code 2 and runtime failures to 1.

mod audit;
mod check_config;
mod clients;
mod db;
mod hash;
mod import;
mod keys;
mod migrate;
mod progress;
mod server;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Failure of a command, by whose fault it was.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Something failed while doing the work (exit code 1).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(err: crate::store::StoreError) -> Self {
        CliError::Runtime(err.into())
    }
}

#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about = "Sign-in, accounts and access control in front of Streamlit apps")]
pub struct Cli {
    /// Configuration file (default: $GATEHOUSE_CONFIG, or ./gatehouse.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an app as a child process and serve it protected: gatehouse run -- streamlit run app.py
    Run(RunArgs),
    /// Protect an app that is already running ([upstream] url or --upstream).
    Serve(ServeArgs),
    /// Hash a password (read from stdin, or prompted) into a PHC argon2id string.
    Hash,
    /// Manage users.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Manage OpenID Connect clients (apps that sign people in with Gatehouse, e.g. st.login()).
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Manage the OpenID Connect provider's signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Show or export the audit log.
    Audit(audit::AuditArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and list every problem.
    CheckConfig,
    /// Move an installation to another database.
    #[command(subcommand)]
    Db(db::DbCommand),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// One password for everybody instead of accounts: a file holding the password, or a hash of it from
    /// `gatehouse hash` (the same as `[password] shared_file`).
    #[arg(long, value_name = "FILE")]
    pub shared_password_file: Option<PathBuf>,
    /// Public address to listen on (default 127.0.0.1:8501).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The URL people use to reach Gatehouse, e.g. https://apps.example.com.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// The app's command line, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// One password for everybody instead of accounts: a file holding the password, or a hash of it from
    /// `gatehouse hash` (the same as `[password] shared_file`).
    #[arg(long, value_name = "FILE")]
    pub shared_password_file: Option<PathBuf>,
    /// Public address to listen on (default 127.0.0.1:8501).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The app's URL, e.g. http://127.0.0.1:8502.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// The URL people use to reach Gatehouse, e.g. https://apps.example.com.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

pub async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Run(args) => server::run(cli.config, args).await,
        Command::Serve(args) => server::serve(cli.config, args).await,
        Command::Hash => hash::hash(),
        Command::Users(command) => users::users(cli.config, command).await,
        Command::Clients(command) => clients::clients(cli.config, command).await,
        Command::Keys(command) => keys::keys(cli.config, command).await,
        Command::Audit(args) => audit::audit(cli.config, args).await,
        Command::Migrate => migrate::migrate(cli.config).await,
        Command::CheckConfig => check_config::check_config(cli.config).await,
        Command::Db(command) => db::db(command).await,
    }
}

/// A shared password that cannot be used is the operator's to fix (exit code 2); the store failing is not.
impl From<crate::accounts::shared_password::SharedPasswordError> for CliError {
    fn from(err: crate::accounts::shared_password::SharedPasswordError) -> Self {
        use crate::accounts::shared_password::SharedPasswordError;
        match err {
            SharedPasswordError::NameTaken | SharedPasswordError::Invalid(_) => CliError::usage(err.to_string()),
            SharedPasswordError::Store(_) | SharedPasswordError::Hash(_) => CliError::Runtime(anyhow::anyhow!(err)),
        }
    }
}

/// How many times a terminal is asked for a new password before giving up.
const PASSWORD_TRIES: usize = 3;

/// Reads a new password from stdin (`--password-stdin`), or prompts twice on a terminal. `check` is the
/// password policy: on a terminal a refused or mistyped password is asked for again (saying why), from stdin
/// it is a usage error.
pub fn read_new_password(from_stdin: bool, check: impl Fn(&str) -> Result<(), String>) -> Result<String, CliError> {
    use std::io::{IsTerminal, Read};
    if from_stdin {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| CliError::usage(format!("could not read the password from stdin: {e}")))?;
        let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input).to_owned();
        if password.is_empty() {
            return Err(CliError::usage("the password read from stdin is empty"));
        }
        check(&password).map_err(CliError::usage)?;
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to ask for a password on: pass --password-stdin and pipe the password in",
        ));
    }
    ask_until_accepted(|prompt| rpassword::prompt_password(prompt), check, |problem| eprintln!("{problem} Try again."))
}

/// Asks (with `ask`) for a password and its repetition until `check` accepts one that was typed the same
/// twice, at most [`PASSWORD_TRIES`] times; each refusal is passed to `tell`.
fn ask_until_accepted(
    mut ask: impl FnMut(&str) -> std::io::Result<String>,
    check: impl Fn(&str) -> Result<(), String>,
    mut tell: impl FnMut(&str),
) -> Result<String, CliError> {
    let mut last = String::new();
    for _ in 0..PASSWORD_TRIES {
        let first = ask("New password: ").map_err(|e| CliError::usage(e.to_string()))?;
        if let Err(problem) = check(&first) {
            tell(&problem);
            last = problem;
            continue;
        }
        let second = ask("Repeat the password: ").map_err(|e| CliError::usage(e.to_string()))?;
        if first == second {
            return Ok(first);
        }
        last = "The two passwords do not match.".to_owned();
        tell(&last);
    }
    Err(CliError::usage(format!("no password set after {PASSWORD_TRIES} tries: {last}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_or_mistyped_password_is_asked_for_again() {
        let typed = ["short", "long enough one", "long enough 1", "long enough one", "long enough one"];
        let mut typed = typed.iter();
        let mut told = Vec::new();
        let check = |p: &str| if p.len() < 8 { Err("The password is too short.".to_owned()) } else { Ok(()) };
        let got = ask_until_accepted(|_| Ok(typed.next().unwrap().to_string()), check, |m| told.push(m.to_owned()));
        assert_eq!(got.unwrap(), "long enough one");
        assert_eq!(told, ["The password is too short.", "The two passwords do not match."]);

        let mut always_short = std::iter::repeat("short");
        let gave_up = ask_until_accepted(|_| Ok(always_short.next().unwrap().to_owned()), check, |_| {});
        let message = match gave_up {
            Err(CliError::Usage(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(message, "no password set after 3 tries: The password is too short.");
    }
}
