//! `gatehouse keys rotate` and `gatehouse keys list`: the OpenID Connect provider's ID token signing keys. A
//! rotation makes a new current key; the old one stays published in the JWKS until the ID tokens it signed
//! have expired (`[oidc] id_token_lifetime`), so relying parties never meet a token they cannot verify.

use std::path::PathBuf;

use clap::Subcommand;
use time::OffsetDateTime;

use super::CliError;
use crate::domain::oidc::SigningAlgorithm;
use crate::domain::{AuditEvent, AuditKind};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; the previous one stays published until its tokens expire.
    Rotate {
        /// RS256, ES256 or EdDSA (default: [oidc] signing_algorithm).
        #[arg(long, value_name = "ALG")]
        algorithm: Option<String>,
    },
    /// List the signing keys (never the private halves).
    List,
}

pub async fn keys(config_file: Option<PathBuf>, command: KeysCommand) -> Result<(), CliError> {
    let config = crate::config::load_or_exit(config_file);
    let store = crate::store::open(config.database.url.expose()).await?;
    eprintln!("database: {}", crate::store::redact_url(config.database.url.expose()));
    let now = OffsetDateTime::now_utc();
    match command {
        KeysCommand::Rotate { algorithm } => {
            let algorithm = match algorithm {
                Some(raw) => SigningAlgorithm::parse(&raw).map_err(|e| CliError::usage(e.0))?,
                None => config.oidc.signing_algorithm,
            };
            let key = crate::oidc::keys::rotate(&store, algorithm, now).await?;
            let event = AuditEvent::new(now, AuditKind::SigningKeyRotated).actor("cli").detail(format!(
                "kid {} {}",
                key.kid,
                algorithm.as_str()
            ));
            store.append_audit(&event).await?;
            if algorithm != config.oidc.signing_algorithm {
                eprintln!(
                    "note: [oidc] signing_algorithm is {}; a server started with that setting rotates back to it",
                    config.oidc.signing_algorithm.as_str()
                );
            }
            println!(
                "new signing key {} ({}); the previous key stays published until its ID tokens expire",
                key.kid,
                algorithm.as_str()
            );
            Ok(())
        }
        KeysCommand::List => {
            let keys = store.signing_keys().await?;
            if keys.is_empty() {
                println!("no signing keys yet (the first is made when the provider first signs or publishes)");
            }
            for key in keys {
                let status = match key.retired_at {
                    None => "current".to_owned(),
                    Some(at) => format!("retired {}", crate::web::account::format_time(at)),
                };
                println!(
                    "{}  {:<6} created {}  {status}",
                    key.kid,
                    key.algorithm.as_str(),
                    crate::web::account::format_time(key.created_at)
                );
            }
            Ok(())
        }
    }
}
