//! `gatehouse users ...`: manage accounts from the shell. Changes go through the same administration rules as
//! the admin console (`crate::admin`) and are audited with the actor `cli`; disabling, deleting or changing
//! the password of a user ends their sessions, and running servers close their open tabs within a second.

use std::path::PathBuf;

use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{CliError, read_new_password};
use crate::admin::{Actor, Admin, AdminError};
use crate::auth::password::hash_blocking;
use crate::domain::password_policy::check_new_password;
use crate::domain::user::parse_display_name;
use crate::domain::{AuditEvent, AuditKind, Email, NewUser, Role, User, Username};
use crate::store::SharedStore;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// A role to grant; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Add or remove roles.
    Roles {
        username: String,
        #[arg(long = "add", value_name = "ROLE")]
        add: Vec<String>,
        #[arg(long = "remove", value_name = "ROLE")]
        remove: Vec<String>,
    },
    /// Disable a user (ends their sessions).
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Delete a user and their sessions.
    Delete { username: String },
    /// Invite someone by email: they get a link to register with this address (see [signup] mode = "invite").
    Invite {
        email: String,
        /// A role to grant on registration; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Only print the link; send no mail.
        #[arg(long)]
        no_mail: bool,
    },
    /// Import users from another tool's file; one bad row stops the import with nothing written.
    Import {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: crate::import::ImportFormat,
        /// Show what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Update users that exist already (otherwise they are skipped).
        #[arg(long)]
        update: bool,
    },
    /// Write every user to stdout.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: super::import::ExportFormat,
        /// Include password hashes (treat the output as a secret).
        #[arg(long)]
        with_hashes: bool,
    },
}

pub async fn users(config_file: Option<PathBuf>, command: UsersCommand) -> Result<(), CliError> {
    let config = crate::config::load_or_exit(config_file);
    let store = crate::store::open(config.database.url.expose()).await?;
    // Said on stderr (JSON output stays clean), so a command run in the wrong folder is noticed.
    eprintln!("database: {}", crate::store::redact_url(config.database.url.expose()));
    let now = OffsetDateTime::now_utc();
    let audit = |kind: AuditKind, subject: &str| AuditEvent::new(now, kind).actor("cli").subject(subject);
    match command {
        UsersCommand::Add { username, email, name, roles, password_stdin } => {
            let username = Username::parse(&username).map_err(|e| CliError::usage(e.0))?;
            let email = email.as_deref().map(Email::parse).transpose().map_err(|e| CliError::usage(e.0))?;
            let display_name = parse_display_name(name.as_deref().unwrap_or("")).map_err(|e| CliError::usage(e.0))?;
            let roles = parse_roles(&roles)?;
            let password = read_new_password(password_stdin, |password| {
                let email = email.as_ref().map(|e| e.as_str());
                check_new_password(password, config.password.min_length, username.as_str(), email).map_err(|e| e.0)
            })?;
            let hash = hash_blocking(&password).map_err(|e| CliError::Runtime(e.into()))?;
            let new = NewUser {
                password_hash: Some(hash),
                ..NewUser::by_admin(username.clone(), email, display_name, roles)
            };
            let user = match store.create_user(new, now).await {
                Ok(user) => user,
                Err(crate::store::StoreError::Conflict(field)) => {
                    return Err(CliError::usage(format!("that {field} is already taken")));
                }
                Err(err) => return Err(err.into()),
            };
            store.append_audit(&audit(AuditKind::UserCreated, user.username.as_str())).await?;
            println!("created user {}", user.username);
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users).map_err(anyhow::Error::from)?);
            } else {
                print_table(&users);
            }
        }
        UsersCommand::Show { username, json } => {
            let user = find(&store, &username).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&user).map_err(anyhow::Error::from)?);
            } else {
                print_user(&user);
            }
        }
        UsersCommand::Passwd { username, password_stdin } => {
            let admin = cli_admin(&config, store.clone())?;
            let user = find(&store, &username).await?;
            let password = read_new_password(password_stdin, |password| {
                let email = user.email.as_ref().map(|e| e.as_str());
                check_new_password(password, config.password.min_length, user.username.as_str(), email).map_err(|e| e.0)
            })?;
            let ended = admin.set_password(&Actor::cli(), &user, &password).await.map_err(admin_error)?;
            println!("password changed for {}; {ended} session(s) ended", user.username);
        }
        UsersCommand::Roles { username, add, remove } => {
            let admin = cli_admin(&config, store.clone())?;
            let user = find(&store, &username).await?;
            let add = parse_roles(&add)?;
            let remove = parse_roles(&remove)?;
            let mut roles: Vec<Role> = user.roles.iter().filter(|r| !remove.contains(r)).cloned().collect();
            roles.extend(add);
            let updated = admin.set_roles(&Actor::cli(), &user, roles).await.map_err(admin_error)?;
            let listed = updated.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
            println!("{} now has roles: {}", updated.username, if listed.is_empty() { "(none)" } else { &listed });
        }
        UsersCommand::Disable { username } => {
            let admin = cli_admin(&config, store.clone())?;
            let user = find(&store, &username).await?;
            let ended = admin.set_disabled(&Actor::cli(), &user, true).await.map_err(admin_error)?;
            println!("disabled {}; {ended} session(s) ended", user.username);
        }
        UsersCommand::Enable { username } => {
            let admin = cli_admin(&config, store.clone())?;
            let user = find(&store, &username).await?;
            admin.set_disabled(&Actor::cli(), &user, false).await.map_err(admin_error)?;
            println!("enabled {}", user.username);
        }
        UsersCommand::Invite { email, roles, no_mail } => {
            let email = Email::parse(&email).map_err(|e| CliError::usage(e.0))?;
            let roles = parse_roles(&roles)?;
            if config.signup.mode != crate::config::SignupMode::Invite {
                eprintln!("warning: [signup] mode is not \"invite\"; the link works only once it is");
            }
            let accounts = cli_accounts(&config, store.clone())?;
            let mail = !no_mail;
            let link = accounts
                .invite(email.clone(), roles, "cli", &crate::auth::ClientInfo::default(), mail)
                .await
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("{e}")))?;
            if mail {
                let via = if accounts.mailer().uses_smtp() { "mailed" } else { "written to the outbox" };
                println!("invitation for {email} {via}");
            }
            println!("{link}");
        }
        UsersCommand::Import { file, format, dry_run, update } => {
            super::import::import(&store, &file, format, dry_run, update, config.password.min_length).await?;
        }
        UsersCommand::Export { format, with_hashes } => {
            super::import::export(&store, format, with_hashes).await?;
        }
        UsersCommand::Delete { username } => {
            let admin = cli_admin(&config, store.clone())?;
            let user = find(&store, &username).await?;
            let ended = admin.delete_user(&Actor::cli(), &user).await.map_err(admin_error)?;
            println!("deleted {}; {ended} session(s) ended", user.username);
        }
    }
    Ok(())
}

/// The account services, for commands that send mail (no server needed).
fn cli_accounts(config: &crate::config::Config, store: SharedStore) -> Result<crate::accounts::Accounts, CliError> {
    Ok(cli_services(config, store)?.0)
}

/// The administration services, so the shell obeys the console's rules (the last administrator stays) and
/// audits the same way, as actor `cli`. Sessions ended here reach running servers through the database.
fn cli_admin(config: &crate::config::Config, store: SharedStore) -> Result<Admin, CliError> {
    Ok(cli_services(config, store)?.1)
}

fn cli_services(
    config: &crate::config::Config,
    store: SharedStore,
) -> Result<(crate::accounts::Accounts, Admin), CliError> {
    let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
    let mailer = crate::mail::Mailer::without_delivery_task(&config.mail)
        .map_err(CliError::Runtime)?
        .with_app_name(config.brand.app_name.as_deref());
    let hub = crate::auth::RevocationHub::default();
    let sessions =
        crate::auth::Sessions::new(store.clone(), clock.clone(), &config.session, hub, (std::time::Duration::ZERO, 1));
    let passwords = crate::auth::Passwords::new();
    let config = std::sync::Arc::new(config.clone());
    let accounts = crate::accounts::Accounts::new(
        store.clone(),
        clock.clone(),
        passwords.clone(),
        sessions.clone(),
        mailer,
        config.clone(),
    );
    let admin = Admin::new(store, clock, sessions, passwords, accounts.clone(), config);
    Ok((accounts, admin))
}

/// Refusals and bad input are the caller's to fix (exit 2); database trouble is a runtime failure.
fn admin_error(err: AdminError) -> CliError {
    match err {
        AdminError::Invalid(problem) => CliError::usage(problem.0),
        AdminError::Refused(message) => CliError::usage(message),
        AdminError::NoSuchUser => CliError::usage("no such user"),
        AdminError::Store(err) => err.into(),
        AdminError::Internal(message) => CliError::Runtime(anyhow::anyhow!(message)),
    }
}

async fn find(store: &SharedStore, username: &str) -> Result<User, CliError> {
    let name = Username::parse(username).map_err(|e| CliError::usage(e.0))?;
    match store.user_by_login(name.as_str()).await? {
        Some(user) if user.username == name => Ok(user),
        _ => Err(CliError::usage(format!("no user called '{name}'"))),
    }
}

fn parse_roles(raw: &[String]) -> Result<Vec<Role>, CliError> {
    raw.iter().map(|r| Role::parse(r).map_err(|e| CliError::usage(e.0))).collect()
}

fn format_time(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| "never".to_owned())
}

fn status(user: &User) -> &'static str {
    if user.disabled {
        "disabled"
    } else if user.is_pending() {
        "pending"
    } else {
        "active"
    }
}

fn print_table(users: &[User]) {
    if users.is_empty() {
        println!("no users");
        return;
    }
    let rows: Vec<[String; 5]> = users
        .iter()
        .map(|u| {
            [
                u.username.to_string(),
                u.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
                status(u).into(),
                format_time(u.last_login_at),
            ]
        })
        .collect();
    let headers = ["USERNAME", "EMAIL", "ROLES", "STATUS", "LAST SIGN-IN"];
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: [&str; 5]| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned()
    };
    println!("{}", line(headers));
    for row in &rows {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
}

fn print_user(user: &User) {
    println!("username      {}", user.username);
    println!("email         {}", user.email.as_ref().map(|e| e.as_str()).unwrap_or("-"));
    println!("name          {}", user.display_name);
    println!("roles         {}", user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "));
    println!("status        {}", status(user));
    println!("created       {}", format_time(Some(user.created_at)));
    println!("updated       {}", format_time(Some(user.updated_at)));
    println!("last sign-in  {}", format_time(user.last_login_at));
    println!("sign-ins      {}", user.login_count);
}
