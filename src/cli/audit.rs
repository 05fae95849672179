//! `gatehouse audit [--since T] [--until T] [--user U] [--kind K] [--json]`: the audit log from the shell,
//! oldest first (as logs read), for review or export to another system. `--json` writes one JSON array.
//! Events are read a page at a time (each page one indexed query) and printed once all are read, since the
//! output runs oldest first and the pages come newest first.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use time::OffsetDateTime;

use super::CliError;
use crate::domain::AuditKind;
use crate::domain::audit::parse_point_in_time;
use crate::store::{AuditEntry, AuditFilter, SharedStore};

/// Events read per database call.
const PAGE: i64 = 1000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events at or after this time: a date (2026-11-01), an RFC 3339 time, or a time ago (24h, 7d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Only events this user did or that concerned them.
    #[arg(long, value_name = "USERNAME")]
    user: Option<String>,
    /// Only events of this kind (e.g. sign_in_failed).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Write a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn audit(config_file: Option<PathBuf>, args: AuditArgs) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    let time = |raw: &Option<String>, flag: &str| {
        raw.as_deref()
            .map(|raw| parse_point_in_time(raw, now).map_err(|e| CliError::usage(format!("{flag}: {}", e.0))))
            .transpose()
    };
    let since = time(&args.since, "--since")?;
    let until = time(&args.until, "--until")?;
    let kind = args
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<AuditKind>().map_err(|message| {
                let known = AuditKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
                CliError::usage(format!("--kind: {message}; known kinds: {known}"))
            })
        })
        .transpose()?;
    let config = crate::config::load_or_exit(config_file);
    let store = crate::store::open(config.database.url.expose()).await?;
    let filter = AuditFilter {
        since,
        until,
        subject_or_actor: args.user.map(|u| u.trim().to_lowercase()),
        kind,
        before_id: None,
        limit: PAGE,
    };
    let events = read_all(&store, filter).await?;
    let mut out = std::io::stdout().lock();
    let written = if args.json { write_json(&mut out, &events) } else { write_table(&mut out, &events) };
    // A closed pipe (`| head`) is not an error worth a message.
    match written {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| CliError::Runtime(e.into())),
    }
}

/// Every matching event, oldest first.
async fn read_all(store: &SharedStore, mut filter: AuditFilter) -> Result<Vec<AuditEntry>, CliError> {
    let mut all = Vec::new();
    loop {
        let page = store.list_audit_entries(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.before_id = Some(last.id);
        let full = page.len() as i64 == PAGE;
        all.extend(page);
        if !full {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

fn write_json(out: &mut impl Write, events: &[AuditEntry]) -> std::io::Result<()> {
    writeln!(out, "[")?;
    for (index, entry) in events.iter().enumerate() {
        let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        let comma = if index + 1 < events.len() { "," } else { "" };
        writeln!(out, "  {line}{comma}")?;
    }
    writeln!(out, "]")
}

fn write_table(out: &mut impl Write, events: &[AuditEntry]) -> std::io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no events");
    }
    let format = time::format_description::well_known::Rfc3339;
    for entry in events {
        let e = &entry.event;
        writeln!(
            out,
            "{}  {:<28} actor={} subject={} ip={}{}",
            e.at.format(&format).unwrap_or_default(),
            e.kind.as_str(),
            e.actor.as_deref().unwrap_or("-"),
            e.subject.as_deref().unwrap_or("-"),
            e.client_ip.as_deref().unwrap_or("-"),
            e.detail.as_deref().map(|d| format!(" detail={d}")).unwrap_or_default(),
        )?;
    }
    Ok(())
}
