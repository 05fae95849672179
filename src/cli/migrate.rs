//! `gatehouse migrate`: apply pending database migrations and exit (they also run at every start).

use std::path::PathBuf;

use super::CliError;

pub async fn migrate(config_file: Option<PathBuf>) -> Result<(), CliError> {
    let config = crate::config::load_or_exit(config_file);
    let store = crate::store::open(config.database.url.expose()).await?;
    println!("database is up to date ({})", store.backend());
    Ok(())
}
