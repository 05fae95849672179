//! Finding clients (the config file's first, then those added with `gatehouse clients add`) and checking
//! the credentials they present at the token endpoint: `client_secret_basic`, `client_secret_post`, or
//! `none` for public clients. Secrets are compared as SHA-256 digests in constant time, or verified against
//! an argon2id hash on the hashing pool.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::error::{ErrorCode, OAuthError};
use super::request::Params;
use crate::auth::Passwords;
use crate::auth::password::Verification;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::TokenHash;
use crate::domain::oidc::{ClientSecret, OidcClient};
use crate::store::{SharedStore, StoreError};

#[derive(Clone)]
pub struct Clients {
    config: Arc<Config>,
    store: SharedStore,
    clock: SharedClock,
    passwords: Passwords,
}

/// What a token request presented to identify its client.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// Whether they came in an `Authorization: Basic` header (a failure then answers with
    /// `WWW-Authenticate`, RFC 6749 §5.2).
    pub basic: bool,
    /// From Basic: the values as sent, before form-decoding.
    pub raw: Option<RawBasic>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RawBasic {
    pub client_id: String,
    pub secret: String,
}

impl Clients {
    pub fn new(config: Arc<Config>, store: SharedStore, clock: SharedClock, passwords: Passwords) -> Self {
        Self { config, store, clock, passwords }
    }

    pub async fn find(&self, client_id: &str) -> Result<Option<OidcClient>, StoreError> {
        if let Some(client) = self.config.oidc.clients.iter().find(|c| c.client_id == client_id) {
            return Ok(Some(client.clone()));
        }
        self.store.oidc_client(client_id).await
    }

    /// The client the credentials prove, or `invalid_client`. Unknown clients, wrong secrets, a secret from a
    /// public client and a missing secret from a confidential one all give the same answer. After
    /// [`FAILURES_BEFORE_PAUSE`] failures for one client id from one address, that pair is refused without a
    /// check for [`FAILURE_PAUSE`]: guessing stays slow, and argon2-hashed secrets cannot be used to burn CPU.
    pub async fn authenticate(&self, credentials: &Credentials, from_ip: &str) -> Result<OidcClient, OAuthError> {
        let key = throttle_key(&credentials.client_id, from_ip);
        let now = self.clock.now();
        let earlier = self.store.throttle_state(&key).await?;
        if let Some(state) = &earlier
            && state.failures >= FAILURES_BEFORE_PAUSE
            && now - state.last_failure_at < FAILURE_PAUSE
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "too many failed attempts; try again in a few minutes",
            ));
        }
        match self.check(credentials).await {
            Err(error) if error.code == ErrorCode::InvalidClient => {
                self.store.record_throttle_failure(&key, now, FAILURE_PAUSE).await?;
                Err(error)
            }
            // A success forgets earlier failures (a misconfigured copy of the app on the same address must not
            // get the working one paused).
            Ok(client) if earlier.is_some() => {
                self.store.clear_throttle(&key).await?;
                Ok(client)
            }
            other => other,
        }
    }

    async fn check(&self, credentials: &Credentials) -> Result<OidcClient, OAuthError> {
        // RFC 6749 §2.3.1 form-encodes id and secret inside Basic; some clients (Authlib, so `st.login()`)
        // do not. Values that decode differently are tried both ways.
        let raw = credentials.raw.as_ref();
        let mut client = self.find(&credentials.client_id).await?;
        if client.is_none()
            && let Some(raw) = raw.filter(|raw| raw.client_id != credentials.client_id)
        {
            client = self.find(&raw.client_id).await?;
        }
        let Some(client) = client else { return Err(OAuthError::invalid_client()) };
        let proven = match (&client.secret, &credentials.secret) {
            (ClientSecret::None, None) => true,
            (ClientSecret::Sha256(expected), Some(presented)) => {
                let matches =
                    |secret: &str| -> bool { TokenHash::of(secret).0.as_bytes().ct_eq(expected.0.as_bytes()).into() };
                // Both forms are always compared, so the time taken does not say which one was close.
                let decoded = matches(presented);
                let as_sent = raw.is_some_and(|raw| matches(&raw.secret));
                decoded | as_sent
            }
            // One argon2 verification per request, of the RFC's form-decoded value: keep such secrets to
            // URL-safe characters, or use a generated secret.
            (ClientSecret::Phc(hash), Some(presented)) => {
                match self.passwords.verify(presented.clone(), Some(hash.clone())).await {
                    Ok(verification) => matches!(verification, Verification::Valid { .. }),
                    Err(err) => {
                        tracing::error!(error = %err, "could not verify a client secret");
                        return Err(OAuthError::new(ErrorCode::ServerError, "the server could not check the client"));
                    }
                }
            }
            _ => false,
        };
        if proven { Ok(client) } else { Err(OAuthError::invalid_client()) }
    }
}

/// Failed client authentications (per client id and address) before a pause.
pub const FAILURES_BEFORE_PAUSE: i64 = 10;
/// How long failures are remembered, and how long the pause lasts after the last one.
pub const FAILURE_PAUSE: time::Duration = time::Duration::minutes(10);

/// The throttle table never holds what a client typed as its id: a hash of it and the address (for IPv6, its
/// /64, which one machine can rotate through).
fn throttle_key(client_id: &str, ip: &str) -> String {
    let network = match ip.parse::<std::net::IpAddr>() {
        Ok(ip) => crate::domain::client_network::ClientNetwork::of(ip).to_string(),
        _ => ip.to_owned(),
    };
    let digest = sha2::Sha256::digest(format!("{client_id}\n{network}").as_bytes());
    format!("oidc-client:{}", &hex::encode(digest)[..32])
}

/// Reads client credentials from `Authorization: Basic` (values form-urlencoded inside, RFC 6749 §2.3.1) or
/// from the form body; using both at once is an error (§2.3).
pub fn credentials(authorization: Option<&str>, form: &Params) -> Result<Credentials, OAuthError> {
    let in_form = (form.get("client_id"), form.get("client_secret"));
    match authorization {
        Some(header) => {
            if in_form.1.is_some() {
                return Err(OAuthError::invalid_request("use one client authentication method, not two"));
            }
            let (raw_id, raw_secret) = parse_basic(header).ok_or_else(OAuthError::invalid_client)?;
            let client_id = form_decode(&raw_id).unwrap_or_else(|| raw_id.clone());
            let secret = form_decode(&raw_secret).unwrap_or_else(|| raw_secret.clone());
            if in_form.0.is_some_and(|id| id != client_id && id != raw_id) {
                return Err(OAuthError::invalid_request("client_id does not match the Authorization header"));
            }
            let raw = Some(RawBasic { client_id: raw_id, secret: raw_secret });
            Ok(Credentials { client_id, secret: Some(secret), basic: true, raw })
        }
        None => match in_form {
            (Some(id), secret) => {
                Ok(Credentials { client_id: id.to_owned(), secret: secret.map(str::to_owned), basic: false, raw: None })
            }
            (None, _) => Err(OAuthError::new(ErrorCode::InvalidClient, "client authentication is missing")),
        },
    }
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `application/x-www-form-urlencoded` decoding of one value; `None` if it is not valid UTF-8 once decoded.
fn form_decode(value: &str) -> Option<String> {
    percent_decode_str(&value.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_basic_or_the_form_but_not_both() {
        let basic = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret"));
        let empty = Params::default();
        let parsed = credentials(Some(&basic), &empty).unwrap();
        assert_eq!((parsed.client_id.as_str(), parsed.secret.as_deref()), ("my app", Some("s:cret")));
        assert_eq!(parsed.raw, Some(RawBasic { client_id: "my%20app".into(), secret: "s%3Acret".into() }));
        let form = Params::parse("client_id=app&client_secret=x").unwrap();
        assert_eq!(credentials(None, &form).unwrap().secret.as_deref(), Some("x"));
        assert_eq!(credentials(Some(&basic), &form).unwrap_err().code, ErrorCode::InvalidRequest);
        let public = Params::parse("client_id=spa").unwrap();
        assert_eq!(credentials(None, &public).unwrap().secret, None);
        assert_eq!(credentials(None, &empty).unwrap_err().code, ErrorCode::InvalidClient);
        assert_eq!(credentials(Some("Bearer abc"), &empty).unwrap_err().code, ErrorCode::InvalidClient);
        assert_eq!(credentials(Some("Basic !!!"), &empty).unwrap_err().code, ErrorCode::InvalidClient);
    }
}
