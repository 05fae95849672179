//! `gatehouse db copy --from URL --to URL`: moves an installation to another database (see `store::copy`),
//! with a progress bar on a terminal and the counts of what was copied at the end.

use std::io::{IsTerminal, Write};

use clap::Subcommand;

use super::CliError;
use crate::store::copy::{CopyError, Progress, copy_database};
use crate::store::redact_url;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy users, sessions, the audit log and keys into a new, empty database.
    Copy {
        /// The database to copy from, e.g. sqlite:///var/lib/gatehouse/gatehouse.db
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into, e.g. postgres://gatehouse@db.internal/gatehouse
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub async fn db(command: DbCommand) -> Result<(), CliError> {
    match command {
        DbCommand::Copy { from, to } => {
            for (flag, url) in [("--from", &from), ("--to", &to)] {
                crate::store::check_database_url(url)
                    .map_err(|message| CliError::usage(format!("{flag}: {message}")))?;
            }
            eprintln!("copying {} -> {}", redact_url(&from), redact_url(&to));
            let mut progress = Bar { terminal: std::io::stderr().is_terminal() };
            let copied = copy_database(&from, &to, &mut progress).await.map_err(|err| match err {
                CopyError::Refused(message) => CliError::usage(message),
                CopyError::Failed(err) => CliError::Runtime(err.context("nothing was copied")),
            })?;
            let total: u64 = copied.0.iter().map(|(_, n)| n).sum();
            println!("copied and verified {total} rows:");
            for (table, rows) in copied.0 {
                println!("  {table:<16} {rows}");
            }
            Ok(())
        }
    }
}

/// A one-line progress bar on a terminal; a line per table otherwise.
struct Bar {
    terminal: bool,
}

impl Progress for Bar {
    fn update(&mut self, table: &str, done: u64, total: u64) {
        if !self.terminal {
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
        let mut err = std::io::stderr();
        let _ = write!(err, "\r  {table:<16} [{bar}] {done}/{total}");
        let _ = err.flush();
    }

    fn finish_table(&mut self, table: &str, total: u64) {
        if self.terminal {
            eprintln!();
        } else {
            eprintln!("  {table:<16} {total} rows");
        }
    }
}
