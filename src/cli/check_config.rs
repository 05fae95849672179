//! `gatehouse check-config`: validate the configuration and list every problem with where it came from
//! (exit 2), then summarise what it does, with warnings about the `[[access]]` rules that are valid but
//! probably not meant: a rule inside another that is looser than it, and roles that no account holds (checked
//! against the database when it exists; check-config never creates one).

use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use crate::config::{Config, config_path};
use crate::domain::access::describe_access;

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
    println!("  admin role  {}", config.admin.role);
    if config.access.is_empty() {
        println!("  access      no [[access]] rules: every path needs a signed-in user");
    }
    for rule in config.access.rules() {
        println!("  access      {} -> {}", rule.describe(), describe_access(rule.access()));
    }
    let mut warnings = config.access.overlap_warnings();
    warnings.extend(unknown_role_warnings(&config).await);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Roles named by access rules that no account holds (a typo, or accounts not set up yet).
async fn unknown_role_warnings(config: &Config) -> Vec<String> {
    let named: Vec<&str> = config
        .access
        .rules()
        .iter()
        .flat_map(|rule| rule.roles.iter().map(|r| r.as_str()))
        .filter(|role| *role != config.admin.role.as_str())
        .collect();
    if named.is_empty() {
        return Vec::new();
    }
    let url = config.database.url.expose();
    if let Some(file) = url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest))
        && !std::path::Path::new(file).exists()
    {
        return vec![format!("the database {file} does not exist yet, so the roles in [[access]] were not checked")];
    }
    let known = async { crate::store::open(url).await?.known_roles().await.map_err(anyhow::Error::from) };
    let known = match tokio::time::timeout(Duration::from_secs(5), known).await {
        Ok(Ok(known)) => known,
        _ => return vec!["could not read the database, so the roles in [[access]] were not checked".to_owned()],
    };
    let mut warnings = Vec::new();
    for role in named {
        let message = format!("no account holds the role '{role}' named in [[access]] (a typo?)");
        if !known.iter().any(|k| k == role) && !warnings.contains(&message) {
            warnings.push(message);
        }
    }
    warnings
}
