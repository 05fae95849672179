//! `gatehouse users import`: bringing existing users in without asking them to reset their passwords.
//!
//! Reading is split by format (one file each); everything after that is shared: every row is checked
//! (names, addresses, roles, password hashes, duplicates, addresses already used by someone else) before
//! anything is written, so one bad row stops the import with its line number and nothing written. Hashes
//! that Gatehouse can verify (bcrypt as written by streamlit-authenticator and `htpasswd -B`, argon2 PHC) are
//! kept as they are and upgraded to argon2id at the user's next sign-in; plaintext passwords are hashed here,
//! on every core, with a warning that the file should be deleted.

mod authenticator;
mod csv_format;
mod htpasswd;
mod secrets_toml;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::domain::user::parse_display_name;
use crate::domain::{Email, NewUser, Role, User, UserId, Username};

/// Which kind of file is being imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// streamlit-authenticator's `config.yaml` (`credentials.usernames`).
    #[value(name = "streamlit-authenticator")]
    StreamlitAuthenticator,
    /// Streamlit `secrets.toml` with a `[passwords]` table (username = "password").
    #[value(name = "secrets-toml")]
    SecretsToml,
    /// Apache `htpasswd` with bcrypt hashes (`htpasswd -B`).
    Htpasswd,
    /// CSV with a header: username, email, name, roles, password_hash, password, disabled.
    Csv,
}

/// A password as found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// A hash Gatehouse can verify, kept as it is.
    Hash(String),
    /// Plaintext, to be hashed before storing.
    Plain(String),
    /// No password: the account cannot sign in with one until it is set.
    None,
}

/// One user read from the file.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Where it starts in the file (1-based), for messages.
    pub line: usize,
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub password: Password,
    pub disabled: bool,
}

/// Which fields a file has at all (by format, or by the CSV header). `--update` changes only those: an
/// htpasswd file, which has no addresses, names or roles, must not wipe them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present {
    pub email: bool,
    pub name: bool,
    pub roles: bool,
    pub disabled: bool,
}

/// A row that cannot be imported; the whole import stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ImportProblem {
    pub line: usize,
    pub message: String,
}

impl ImportProblem {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

/// What the file holds, and what an import of it should warn about.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<ImportRow>,
    pub present: Present,
    pub warnings: Vec<String>,
    /// One password for everybody (`password = "..."` at the top of a `secrets.toml`), for
    /// `accounts::shared_password`.
    pub shared_password: Option<Password>,
}

pub fn parse(format: ImportFormat, text: &str) -> Result<Parsed, ImportProblem> {
    let parsed = match format {
        ImportFormat::StreamlitAuthenticator => authenticator::parse(text)?,
        ImportFormat::SecretsToml => secrets_toml::parse(text)?,
        ImportFormat::Htpasswd => htpasswd::parse(text)?,
        ImportFormat::Csv => csv_format::parse(text)?,
    };
    let plain = parsed.rows.iter().filter(|r| matches!(r.password, Password::Plain(_))).count()
        + usize::from(matches!(parsed.shared_password, Some(Password::Plain(_))));
    let mut warnings = parsed.warnings;
    if plain > 0 {
        warnings.push(format!(
            "{plain} password(s) in the file are plaintext; they will be hashed (argon2id). Delete the file afterwards."
        ));
    }
    Ok(Parsed { warnings, ..parsed })
}

/// Reads a password field: a hash Gatehouse can verify is kept, anything that looks like another kind of
/// hash is refused (it could never be verified), anything else is plaintext.
pub fn classify_password(raw: &str) -> Result<Password, String> {
    let password = classify_shape(raw.trim())?;
    if let Password::Hash(hash) = &password {
        crate::auth::password::check_hash_cost(hash)?;
    }
    Ok(password)
}

fn classify_shape(raw: &str) -> Result<Password, String> {
    if raw.is_empty() {
        return Ok(Password::None);
    }
    let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| raw.starts_with(p));
    if bcrypt {
        return if raw.len() == 60 && raw.parse::<bcrypt::HashParts>().is_ok() {
            Ok(Password::Hash(raw.to_owned()))
        } else {
            Err("is not a complete bcrypt hash".into())
        };
    }
    if raw.starts_with("$argon2") {
        let complete = argon2::PasswordHash::new(raw).is_ok_and(|h| h.hash.is_some() && h.salt.is_some());
        return if complete { Ok(Password::Hash(raw.to_owned())) } else { Err("is not a complete argon2 hash".into()) };
    }
    let foreign = ["$apr1$", "$1$", "$5$", "$6$", "{SHA}", "{SSHA}", "$pbkdf2", "pbkdf2_", "$scrypt$"];
    if foreign.iter().any(|p| raw.starts_with(p)) {
        return Err("uses a hash Gatehouse cannot verify (only bcrypt and argon2 can be imported)".into());
    }
    Ok(Password::Plain(raw.to_owned()))
}

/// Shared checks of the fields every format has.
pub(crate) fn row(
    line: usize,
    username: &str,
    email: Option<&str>,
    name: &str,
    roles: &[String],
    password: &str,
) -> Result<ImportRow, ImportProblem> {
    let problem = |message: String| ImportProblem::new(line, message);
    let username = Username::parse(username).map_err(|e| problem(format!("username '{username}': {e}")))?;
    let email =
        email.map(str::trim).filter(|e| !e.is_empty()).map(Email::parse).transpose().map_err(|e| problem(e.0))?;
    let display_name = parse_display_name(name).map_err(|e| problem(e.0))?;
    let roles = roles
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(Role::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(e.0))?;
    let password = classify_password(password).map_err(|e| problem(format!("the password of '{username}' {e}")))?;
    Ok(ImportRow { line, username, email, display_name, roles, password, disabled: false })
}

/// What an import will do.
#[derive(Debug, Default)]
pub struct Plan {
    pub creates: Vec<ImportRow>,
    pub updates: Vec<(UserId, ImportRow)>,
    /// Users that exist already and are left alone (without `--update`).
    pub skipped: Vec<ImportRow>,
}

/// Decides, for every row, create, update or skip, and refuses files that would break a rule: the same
/// username or address twice, or an address that belongs to another existing user. An update keeps what
/// the file does not have (see [`Present`]), and the password when the row has none.
pub fn plan(rows: Vec<ImportRow>, present: Present, existing: &[User], update: bool) -> Result<Plan, ImportProblem> {
    let by_name: HashMap<&str, &User> = existing.iter().map(|u| (u.username.as_str(), u)).collect();
    let email_owner: HashMap<&str, &str> =
        existing.iter().filter_map(|u| u.email.as_ref().map(|e| (e.as_str(), u.username.as_str()))).collect();
    let mut names = HashSet::new();
    let mut emails = HashMap::new();
    let mut plan = Plan::default();
    for mut row in rows {
        if let Some(user) = by_name.get(row.username.as_str()).filter(|_| update) {
            keep_absent_fields(&mut row, present, user);
        }
        if !names.insert(row.username.as_str().to_owned()) {
            return Err(ImportProblem::new(row.line, format!("'{}' appears twice in the file", row.username)));
        }
        if let Some(email) = &row.email {
            if let Some(first) = emails.insert(email.as_str().to_owned(), row.line) {
                return Err(ImportProblem::new(row.line, format!("{email} is also used on line {first}")));
            }
            let will_keep_it = |owner: &str| owner == row.username.as_str();
            if let Some(owner) = email_owner.get(email.as_str()).filter(|o| !will_keep_it(o)) {
                return Err(ImportProblem::new(row.line, format!("{email} already belongs to the user '{owner}'")));
            }
        }
        match by_name.get(row.username.as_str()) {
            Some(user) if update => plan.updates.push((user.id.clone(), row)),
            Some(_) => plan.skipped.push(row),
            None => plan.creates.push(row),
        }
    }
    Ok(plan)
}

fn keep_absent_fields(row: &mut ImportRow, present: Present, user: &User) {
    if !present.email {
        row.email = user.email.clone();
    }
    if !present.name {
        row.display_name = user.display_name.clone();
    }
    if !present.roles {
        row.roles = user.roles.clone();
    }
    if !present.disabled {
        row.disabled = user.disabled;
    }
}

/// Hashes the plaintext passwords of `rows` on every core; `progress` is told how many are done.
pub fn hash_plaintext<'a>(
    rows: impl Iterator<Item = &'a mut ImportRow>,
    progress: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<()> {
    let mut plain: Vec<&mut ImportRow> = rows.filter(|r| matches!(r.password, Password::Plain(_))).collect();
    if plain.is_empty() {
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = plain.len().div_ceil(threads);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = plain
            .chunks_mut(chunk)
            .map(|rows| {
                let done = &done;
                scope.spawn(move || -> anyhow::Result<()> {
                    for row in rows {
                        if let Password::Plain(password) = &row.password {
                            row.password = Password::Hash(crate::auth::password::hash_blocking(password)?);
                            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?)
    })
}

impl ImportRow {
    /// The user to store; imported addresses are trusted like those an administrator types.
    pub fn into_new_user(self) -> NewUser {
        let password_hash = match self.password {
            Password::Hash(hash) => Some(hash),
            Password::Plain(_) => unreachable!("plaintext is hashed before rows are stored"),
            Password::None => None,
        };
        let disabled = self.disabled;
        NewUser {
            password_hash,
            disabled,
            ..NewUser::by_admin(self.username, self.email, self.display_name, self.roles)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_classified() {
        let bcrypt = bcrypt::hash("hunter22", 4).unwrap();
        assert_eq!(classify_password(&bcrypt), Ok(Password::Hash(bcrypt.clone())));
        assert_eq!(classify_password(""), Ok(Password::None));
        assert_eq!(classify_password("hunter22"), Ok(Password::Plain("hunter22".into())));
        assert!(classify_password("$2b$12$short").is_err());
        assert!(classify_password("$apr1$abc$def").is_err());
        assert!(classify_password("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=").is_err());
        assert!(classify_password("$argon2id$nonsense").is_err());
    }

    fn row_named(line: usize, name: &str, email: &str) -> ImportRow {
        row(line, name, Some(email), "", &[], "").unwrap()
    }

    #[test]
    fn plans_refuse_duplicates_and_stolen_addresses() {
        let all = Present { email: true, name: true, roles: true, disabled: true };
        let rows = vec![row_named(1, "a", "a@example.com"), row_named(2, "A", "b@example.com")];
        assert_eq!(plan(rows, all, &[], false).unwrap_err().line, 2);
        let rows = vec![row_named(1, "a", "x@example.com"), row_named(5, "b", "X@example.com")];
        let err = plan(rows, all, &[], false).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (5, "x@example.com is also used on line 1"));
    }
}
