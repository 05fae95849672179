//! `gatehouse check-config`: validate the configuration and list every problem with where it came from.

use std::path::PathBuf;

use super::CliError;
use crate::config::{Config, config_path};

pub fn check_config(config_file: Option<PathBuf>) -> Result<(), CliError> {
    let path = config_path(config_file);
    match Config::load(path.as_deref()) {
        Ok(config) => {
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
            Ok(())
        }
        Err(problems) => {
            let mut message = format!("the configuration has {} problem(s):", problems.len());
            for problem in problems {
                message.push_str(&format!("\n  - {problem}"));
            }
            Err(CliError::usage(message))
        }
    }
}
