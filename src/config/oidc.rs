//! `[oidc]`: the OpenID Connect provider's signing algorithm and token lifetimes, and `[[oidc.clients]]`, the
//! relying parties defined in the file (more can be added with `gatehouse clients add`).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::ConfigReader;
use crate::domain::oidc::{
    ClientSecret, ClientSource, OidcClient, SigningAlgorithm, parse_client_id, parse_redirect_uri,
};
use crate::domain::{Role, TokenHash};

/// Secrets people write into files are checked for at least this length (e.g. `openssl rand -hex 32`).
const MIN_SECRET_LENGTH: usize = 16;

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The algorithm of newly made signing keys (a change takes effect as a key rotation at the next start).
    pub signing_algorithm: SigningAlgorithm,
    pub id_token_lifetime: Duration,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    /// Clients from the file; `gatehouse clients add` stores more in the database.
    pub clients: Vec<OidcClient>,
}

/// One `[[oidc.clients]]` table as written.
#[derive(Debug, Default)]
struct RawClient {
    client_id: String,
    name: Option<String>,
    client_secret_file: Option<String>,
    client_secret_hash: Option<String>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    first_party: bool,
    allowed_roles: Vec<String>,
}

const CLIENT_KEYS: [&str; 8] = [
    "client_id",
    "name",
    "client_secret_file",
    "client_secret_hash",
    "redirect_uris",
    "post_logout_redirect_uris",
    "first_party",
    "allowed_roles",
];

/// Reads a table key by key, so that every wrong key and every wrong type is reported, not just the first;
/// keys with a wrong type read as their default, so the other checks still run.
fn raw_client(table: figment::value::Value, problems: &mut Vec<String>) -> RawClient {
    let Some(dict) = table.into_dict() else {
        problems.push("must be a table".into());
        return RawClient::default();
    };
    for key in dict.keys().filter(|key| !CLIENT_KEYS.contains(&key.as_str())) {
        let hint = if key == "client_secret" {
            " (keep secrets out of the file: use client_secret_file or client_secret_hash)"
        } else {
            ""
        };
        problems.push(format!("unknown key '{key}'{hint}; the keys are {}", CLIENT_KEYS.join(", ")));
    }
    fn field<T: DeserializeOwned + Default>(dict: &figment::value::Dict, key: &str, problems: &mut Vec<String>) -> T {
        let Some(value) = dict.get(key) else { return T::default() };
        match value.deserialize::<T>() {
            Ok(value) => value,
            Err(err) => {
                problems.push(format!("{key}: {}", err.kind));
                T::default()
            }
        }
    }
    RawClient {
        client_id: field(&dict, "client_id", problems),
        name: field(&dict, "name", problems),
        client_secret_file: field(&dict, "client_secret_file", problems),
        client_secret_hash: field(&dict, "client_secret_hash", problems),
        redirect_uris: field(&dict, "redirect_uris", problems),
        post_logout_redirect_uris: field(&dict, "post_logout_redirect_uris", problems),
        first_party: field(&dict, "first_party", problems),
        allowed_roles: field(&dict, "allowed_roles", problems),
    }
}

pub(super) fn read_oidc(r: &mut ConfigReader) -> OidcConfig {
    let signing_algorithm = r
        .parsed("oidc.signing_algorithm", |s| SigningAlgorithm::parse(s).map_err(|e| e.0))
        .unwrap_or(SigningAlgorithm::Rs256);
    let mut lifetime = |key: &str, default: Duration, max: Duration| {
        let value = r.duration(key).unwrap_or(default);
        if !(Duration::from_secs(60)..=max).contains(&value) {
            r.problem(key, format!("must be between one minute and {}", humantime::format_duration(max)));
        }
        value
    };
    let id_token_lifetime = lifetime("oidc.id_token_lifetime", Duration::from_secs(3600), Duration::from_secs(86400));
    let access_token_lifetime =
        lifetime("oidc.access_token_lifetime", Duration::from_secs(3600), Duration::from_secs(86400));
    let refresh_token_lifetime =
        lifetime("oidc.refresh_token_lifetime", Duration::from_secs(30 * 86400), Duration::from_secs(365 * 86400));
    let clients = read_clients(r);
    OidcConfig { signing_algorithm, id_token_lifetime, access_token_lifetime, refresh_token_lifetime, clients }
}

fn read_clients(r: &mut ConfigReader) -> Vec<OidcClient> {
    let Some(tables) = r.value::<Vec<figment::value::Value>>("oidc.clients") else { return Vec::new() };
    let mut clients: Vec<OidcClient> = Vec::new();
    for (index, table) in tables.into_iter().enumerate() {
        let key = format!("oidc.clients[{index}]");
        let mut problems = Vec::new();
        let raw = raw_client(table, &mut problems);
        let client_id = if raw.client_id.trim().is_empty() {
            problems.push("client_id is missing".into());
            String::new()
        } else {
            parse_client_id(raw.client_id.trim()).map_err(|e| problems.push(e.0)).unwrap_or_default()
        };
        if clients.iter().any(|c| c.client_id == client_id) {
            problems.push(format!("client_id '{client_id}' is defined twice"));
        }
        let secret = read_secret(&raw).map_err(|e| problems.push(e)).unwrap_or(ClientSecret::None);
        if raw.redirect_uris.is_empty() {
            problems.push(
                "needs at least one redirect_uris entry (e.g. \"https://app.example.com/oauth2callback\")".into(),
            );
        }
        let mut uris = |list: &[String]| -> Vec<String> {
            list.iter().filter_map(|uri| parse_redirect_uri(uri).map_err(|e| problems.push(e.0)).ok()).collect()
        };
        let redirect_uris = uris(&raw.redirect_uris);
        let post_logout_redirect_uris = uris(&raw.post_logout_redirect_uris);
        let allowed_roles: Vec<Role> = raw
            .allowed_roles
            .iter()
            .filter_map(|role| Role::parse(role).map_err(|e| problems.push(e.0)).ok())
            .collect();
        for problem in &problems {
            r.problem(&key, problem.clone());
        }
        if problems.is_empty() {
            clients.push(OidcClient {
                name: raw.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| client_id.clone()),
                client_id,
                secret,
                redirect_uris,
                post_logout_redirect_uris,
                first_party: raw.first_party,
                allowed_roles,
                source: ClientSource::Config,
                created_at: None,
            });
        }
    }
    clients
}

/// `client_secret_file` (the plain secret, kept as its hash), `client_secret_hash` (argon2id), or neither (a
/// public client).
fn read_secret(raw: &RawClient) -> Result<ClientSecret, String> {
    match (&raw.client_secret_file, &raw.client_secret_hash) {
        (Some(_), Some(_)) => Err("set client_secret_file or client_secret_hash, not both".into()),
        (Some(path), None) => {
            let content =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read client_secret_file '{path}': {e}"))?;
            let secret = content.trim_end_matches(['\n', '\r']);
            if secret.chars().count() < MIN_SECRET_LENGTH {
                return Err(format!(
                    "the secret in '{path}' is shorter than {MIN_SECRET_LENGTH} characters; make one with `openssl rand -hex 32`"
                ));
            }
            Ok(ClientSecret::Sha256(TokenHash::of(secret)))
        }
        (None, Some(hash)) => {
            if !hash.starts_with("$argon2") {
                return Err("client_secret_hash must be an argon2id hash from `gatehouse hash`".into());
            }
            crate::auth::password::check_hash_cost(hash).map_err(|e| format!("client_secret_hash {e}"))?;
            Ok(ClientSecret::Phc(hash.clone()))
        }
        (None, None) => Ok(ClientSecret::None),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::domain::TokenHash;
    use crate::domain::oidc::{ClientSecret, SigningAlgorithm};

    #[test]
    fn clients_and_lifetimes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let config = Config::from_toml_str(&format!(
            r#"
            [oidc]
            signing_algorithm = "ES256"
            id_token_lifetime = "15m"
            [[oidc.clients]]
            client_id = "dashboard"
            name = "Sales dashboard"
            client_secret_file = {secret:?}
            redirect_uris = ["http://localhost:8502/oauth2callback"]
            post_logout_redirect_uris = ["http://localhost:8502/oauth2callback"]
            first_party = true
            allowed_roles = ["sales"]
            [[oidc.clients]]
            client_id = "spa"
            redirect_uris = ["https://spa.example.com/cb"]
            "#
        ))
        .unwrap();
        let oidc = &config.oidc;
        assert_eq!(oidc.signing_algorithm, SigningAlgorithm::Es256);
        assert_eq!(oidc.id_token_lifetime.as_secs(), 900);
        assert_eq!(oidc.refresh_token_lifetime.as_secs(), 30 * 86400);
        let dashboard = &oidc.clients[0];
        assert_eq!(dashboard.name, "Sales dashboard");
        assert_eq!(dashboard.secret, ClientSecret::Sha256(TokenHash::of("0123456789abcdef0123456789abcdef")));
        assert!(dashboard.first_party && dashboard.allowed_roles[0].as_str() == "sales");
        assert!(oidc.clients[1].is_public() && oidc.clients[1].name == "spa" && !oidc.clients[1].first_party);
        assert!(!format!("{config:?}").contains("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn bad_clients_are_listed_with_their_position() {
        let problems = Config::from_toml_str(
            r#"
            [oidc]
            signing_algorithm = "HS256"
            access_token_lifetime = "10s"
            [[oidc.clients]]
            client_id = "a b"
            redirect_uris = ["javascript:alert(1)"]
            [[oidc.clients]]
            client_id = "x"
            client_secret = "hunter2"
            redirect_uris = ["https://x.example/cb"]
            [[oidc.clients]]
            client_id = "y"
            [[oidc.clients]]
            client_id = "z"
            client_secret_hash = "plain"
            client_secret_file = "/nonexistent"
            redirect_uris = ["https://z.example/cb"]
            "#,
        )
        .unwrap_err();
        let text = format!("{problems:?}");
        for key in [
            "oidc.signing_algorithm",
            "oidc.access_token_lifetime",
            "oidc.clients[0]",
            "oidc.clients[1]",
            "oidc.clients[2]",
            "oidc.clients[3]",
        ] {
            assert!(problems.iter().any(|p| p.key == key), "{key} not reported: {text}");
        }
        assert!(text.contains("client_secret_file or client_secret_hash"), "{text}");
        assert!(!text.contains("hunter2"), "the secret never appears in messages: {text}");

        // Every problem of one table at once: a wrong type does not hide an unknown key or a bad URI.
        let problems = Config::from_toml_str(
            r#"
            [[oidc.clients]]
            client_id = "x"
            first_party = "yes"
            post_logout_redirect_uri = "https://x.example/"
            redirect_uris = ["127.0.0.1:9401/oauth2callback"]
            "#,
        )
        .unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.starts_with("first_party:")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("unknown key 'post_logout_redirect_uri'")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("'127.0.0.1:9401/oauth2callback' is not a usable redirect URI")));
        assert_eq!(messages.len(), 3, "{messages:?}");
    }
}
