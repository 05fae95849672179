//! `gatehouse clients add|list|remove`: OpenID Connect clients kept in the database, beside those in
//! `[[oidc.clients]]`. A new confidential client gets a generated 256-bit secret, printed once and stored
//! only as its SHA-256.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use time::OffsetDateTime;

use super::CliError;
use crate::domain::oidc::{ClientSecret, ClientSource, OidcClient, parse_client_id, parse_redirect_uri};
use crate::domain::{AuditEvent, AuditKind, Role, TokenHash};
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; its secret is printed once.
    Add {
        /// The client id the app will use (letters, digits, '-', '_', '.').
        client_id: String,
        /// Where sign-ins may return, e.g. https://app.example.com/oauth2callback (repeatable; exact match).
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where sign-out may return (repeatable); for Streamlit, the app's /oauth2callback URL too.
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// The name shown on the consent page (default: the client id).
        #[arg(long)]
        name: Option<String>,
        /// An app of your own: no consent page.
        #[arg(long)]
        first_party: bool,
        /// No secret (a browser or desktop app); it must use PKCE.
        #[arg(long)]
        public: bool,
        /// Only users holding this role may sign in (repeatable: any one of them).
        #[arg(long = "allowed-role", value_name = "ROLE")]
        allowed_roles: Vec<String>,
        /// Print the client id and secret as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every client, from the configuration file and the database.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a client added with `clients add`, with its tokens and consents.
    Remove { client_id: String },
}

pub async fn clients(config_file: Option<PathBuf>, command: ClientsCommand) -> Result<(), CliError> {
    let config = crate::config::load_or_exit(config_file);
    let store = crate::store::open(config.database.url.expose()).await?;
    eprintln!("database: {}", crate::store::redact_url(config.database.url.expose()));
    let now = OffsetDateTime::now_utc();
    let in_config = |id: &str| config.oidc.clients.iter().any(|c| c.client_id == id);
    match command {
        ClientsCommand::Add {
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            name,
            first_party,
            public,
            allowed_roles,
            json,
        } => {
            let client_id = parse_client_id(&client_id).map_err(|e| CliError::usage(e.0))?;
            if in_config(&client_id) {
                return Err(CliError::usage(format!(
                    "client '{client_id}' is defined in the configuration file; edit it there"
                )));
            }
            let uris = |list: &[String]| -> Result<Vec<String>, CliError> {
                list.iter().map(|u| parse_redirect_uri(u).map_err(|e| CliError::usage(e.0))).collect()
            };
            let allowed_roles = allowed_roles
                .iter()
                .map(|r| Role::parse(r).map_err(|e| CliError::usage(e.0)))
                .collect::<Result<Vec<_>, _>>()?;
            let secret = (!public).then(|| crate::random::url_token(32));
            let client = OidcClient {
                name: name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| client_id.clone()),
                client_id: client_id.clone(),
                secret: secret.as_deref().map_or(ClientSecret::None, |s| ClientSecret::Sha256(TokenHash::of(s))),
                redirect_uris: uris(&redirect_uris)?,
                post_logout_redirect_uris: uris(&post_logout_redirect_uris)?,
                first_party,
                allowed_roles,
                source: ClientSource::Database,
                created_at: Some(now),
            };
            match store.create_oidc_client(&client, now).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(CliError::usage(format!(
                        "a client '{client_id}' already exists; to change it, `gatehouse clients remove {client_id}` and add it again (it gets a new secret)"
                    )));
                }
                other => other?,
            }
            for uri in client.redirect_uris.iter().filter(|u| crate::domain::oidc::is_plain_http_to_another_machine(u))
            {
                eprintln!(
                    "warning: {uri} is plain http to another machine: sign-in codes would cross the network unencrypted (use https)"
                );
            }
            let event = AuditEvent::new(now, AuditKind::ClientAdded).actor("cli").detail(format!("client {client_id}"));
            store.append_audit(&event).await?;
            if json {
                println!("{}", json!({ "client_id": client_id, "client_secret": secret }));
            } else {
                println!("client_id:     {client_id}");
                match &secret {
                    Some(secret) => {
                        println!("client_secret: {secret}");
                        eprintln!("The secret is shown only this once: put it in the app's secrets now.");
                    }
                    None => println!("client_secret: (none: a public client, which must use PKCE)"),
                }
            }
            Ok(())
        }
        ClientsCommand::List { json } => {
            let mut all: Vec<OidcClient> = config.oidc.clients.clone();
            all.extend(store.list_oidc_clients().await?);
            if json {
                let list: Vec<_> = all.iter().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
                return Ok(());
            }
            if all.is_empty() {
                println!("no OpenID Connect clients (add one with `gatehouse clients add`)");
            }
            for client in &all {
                let kind = if client.is_public() { "public" } else { "confidential" };
                let party = if client.first_party { ", first-party" } else { "" };
                let source = match client.source {
                    ClientSource::Config => "config file",
                    ClientSource::Database => "database",
                };
                println!("{}  ({kind}{party}; {source})", client.client_id);
                println!("  name:              {}", client.name);
                println!("  redirect URIs:     {}", client.redirect_uris.join(", "));
                if !client.post_logout_redirect_uris.is_empty() {
                    println!("  after sign-out:    {}", client.post_logout_redirect_uris.join(", "));
                }
                if !client.allowed_roles.is_empty() {
                    let roles: Vec<&str> = client.allowed_roles.iter().map(|r| r.as_str()).collect();
                    println!("  only roles:        {}", roles.join(", "));
                }
            }
            Ok(())
        }
        ClientsCommand::Remove { client_id } => {
            if in_config(&client_id) {
                return Err(CliError::usage(format!(
                    "client '{client_id}' is defined in the configuration file; remove it there"
                )));
            }
            if !store.delete_oidc_client(&client_id).await? {
                return Err(CliError::usage(format!("no client '{client_id}'")));
            }
            let event =
                AuditEvent::new(now, AuditKind::ClientRemoved).actor("cli").detail(format!("client {client_id}"));
            store.append_audit(&event).await?;
            println!("removed client {client_id}; its tokens no longer work");
            Ok(())
        }
    }
}

/// A client for `list --json` (never any secret or hash).
fn describe(client: &OidcClient) -> serde_json::Value {
    json!({
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public(),
        "first_party": client.first_party,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "allowed_roles": client.allowed_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "source": match client.source { ClientSource::Config => "config", ClientSource::Database => "database" },
    })
}
