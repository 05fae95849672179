//! `gatehouse users import FILE --format ...` and `gatehouse users export --format csv|json`.
//!
//! An import reads and checks the whole file first (`import` module): one bad row stops it with its line
//! number (exit code 2) and nothing written. `--dry-run` stops after saying what would change. Plaintext
//! passwords are hashed on every core, then everything is written in one transaction.

use std::path::Path;
use std::sync::Mutex;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CliError;
use super::progress::ProgressLine;
use crate::domain::{AuditEvent, AuditKind, User};
use crate::import::{ImportFormat, ImportRow, Password, hash_plaintext, parse, plan};
use crate::store::SharedStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// How many names of each kind a dry run lists before saying "and N more".
const LISTED: usize = 20;

pub async fn import(
    store: &SharedStore,
    file: &Path,
    format: ImportFormat,
    dry_run: bool,
    update: bool,
    min_length: usize,
) -> Result<(), CliError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    let located = |problem: crate::import::ImportProblem| CliError::usage(format!("{}: {problem}", file.display()));
    let parsed = parse(format, &text).map_err(located)?;
    for warning in &parsed.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(Password::Plain(plain)) = &parsed.shared_password
        && plain.chars().count() < min_length
    {
        return Err(CliError::usage(format!(
            "{}: the top-level password is shorter than {min_length} characters ([password] min_length)",
            file.display()
        )));
    }
    let existing = store.list_users().await?;
    let parsed_shared = parsed.shared_password;
    let mut plan = plan(parsed.rows, parsed.present, &existing, update).map_err(located)?;
    let verb = if dry_run { "would" } else { "will" };
    println!(
        "{verb} create {} user(s), update {}, skip {} that exist already{}",
        plan.creates.len(),
        plan.updates.len(),
        plan.skipped.len(),
        if plan.skipped.is_empty() || update { "" } else { " (use --update to update them)" }
    );
    if dry_run {
        list("create", plan.creates.iter());
        list("update", plan.updates.iter().map(|(_, row)| row));
        list("skip", plan.skipped.iter());
        if parsed_shared.is_some() {
            println!("would make the file's top-level password the shared password (account 'shared')");
        }
        println!("dry run: nothing was written");
        return Ok(());
    }

    let to_hash = plan
        .creates
        .iter()
        .chain(plan.updates.iter().map(|(_, r)| r))
        .filter(|r| matches!(r.password, Password::Plain(_)))
        .count();
    if to_hash > 0 {
        let bar = Mutex::new(ProgressLine::new("hashing", to_hash as u64));
        let report = |done: usize| bar.lock().unwrap_or_else(|p| p.into_inner()).update(done as u64);
        let rows = plan.creates.iter_mut().chain(plan.updates.iter_mut().map(|(_, r)| r));
        // The CLI's runtime has nothing else to do meanwhile: blocking it on the hashing threads is fine.
        hash_plaintext(rows, &report).map_err(CliError::Runtime)?;
        bar.into_inner().unwrap_or_else(|p| p.into_inner()).finish();
    }

    let (created, updated) = (plan.creates.len(), plan.updates.len());
    let creates: Vec<_> = plan.creates.into_iter().map(ImportRow::into_new_user).collect();
    let updates: Vec<_> = plan.updates.into_iter().map(|(id, row)| (id, row.into_new_user())).collect();
    let bar = Mutex::new(ProgressLine::new("writing", (created + updated) as u64));
    let report = |done: usize| bar.lock().unwrap_or_else(|p| p.into_inner()).update(done as u64);
    let now = OffsetDateTime::now_utc();
    let counts = store
        .import_users(&creates, &updates, now, &report)
        .await
        .map_err(|e| CliError::Runtime(anyhow::Error::from(e).context("the import failed; nothing was written")))?;
    bar.into_inner().unwrap_or_else(|p| p.into_inner()).finish();
    let detail = format!(
        "format={format:?} created={} updated={} skipped={}",
        counts.created,
        counts.updated,
        plan.skipped.len()
    );
    let event = AuditEvent::new(now, AuditKind::UsersImported).actor("cli").subject(file.display().to_string());
    store.append_audit(&event.detail(detail)).await?;
    println!("imported: {} created, {} updated, {} skipped", counts.created, counts.updated, plan.skipped.len());
    // Last, once every row was checked and written: a failed import switches nothing on.
    if let Some(shared) = &parsed_shared {
        install_shared_password(store, shared).await?;
    }
    Ok(())
}

/// A top-level `password` (Streamlit's one-password recipe) becomes Gatehouse's shared password.
async fn install_shared_password(store: &SharedStore, password: &Password) -> Result<(), CliError> {
    use crate::accounts::shared_password::{self, Installed};
    let passwords = crate::auth::Passwords::new();
    match shared_password::install(store, &passwords, password, "import", OffsetDateTime::now_utc()).await? {
        Installed::Unchanged => println!("the shared password was already this one"),
        Installed::Disabled => println!(
            "the account '{}' is disabled, so the shared password stays off (gatehouse users enable {} turns it on)",
            shared_password::USERNAME,
            shared_password::USERNAME
        ),
        Installed::Created | Installed::Changed => println!(
            "the file's top-level password is now the shared password: the sign-in page asks only for it, and the app sees the user '{}'",
            shared_password::USERNAME
        ),
    }
    Ok(())
}

fn list<'a>(what: &str, rows: impl Iterator<Item = &'a ImportRow>) {
    let rows: Vec<_> = rows.collect();
    if rows.is_empty() {
        return;
    }
    let names: Vec<&str> = rows.iter().take(LISTED).map(|r| r.username.as_str()).collect();
    let more = rows.len().saturating_sub(LISTED);
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    println!("  {what}: {}{tail}", names.join(", "));
}

/// Writes every user to stdout; password hashes only with `with_hashes` (they are secrets).
pub async fn export(store: &SharedStore, format: ExportFormat, with_hashes: bool) -> Result<(), CliError> {
    let users = store.list_users().await?;
    let time = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
    let roles = |u: &User| u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(";");
    match format {
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
            let mut header = vec![
                "username",
                "email",
                "name",
                "roles",
                "disabled",
                "email_verified",
                "created_at",
                "last_login_at",
                "login_count",
            ];
            if with_hashes {
                header.push("password_hash");
            }
            writer.write_record(&header).map_err(anyhow::Error::from)?;
            for u in &users {
                let mut record = vec![
                    u.username.to_string(),
                    u.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                    u.display_name.clone(),
                    roles(u),
                    u.disabled.to_string(),
                    u.email_verified.to_string(),
                    time(Some(u.created_at)),
                    time(u.last_login_at),
                    u.login_count.to_string(),
                ];
                if with_hashes {
                    record.push(u.password_hash.clone().unwrap_or_default());
                }
                writer.write_record(&record).map_err(anyhow::Error::from)?;
            }
            writer.flush().map_err(anyhow::Error::from)?;
        }
        ExportFormat::Json => {
            let values: Vec<serde_json::Value> = users
                .iter()
                .map(|u| {
                    let mut value = serde_json::to_value(u).unwrap_or_default();
                    if with_hashes && let Some(object) = value.as_object_mut() {
                        object.insert("password_hash".into(), u.password_hash.clone().into());
                    }
                    value
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&values).map_err(anyhow::Error::from)?);
        }
    }
    eprintln!("exported {} user(s){}", users.len(), if with_hashes { " with password hashes" } else { "" });
    Ok(())
}
