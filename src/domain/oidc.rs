//! The OpenID Connect provider's rules as plain values: scopes and the claims they release, registered
//! clients and how their redirect URIs match, and the records the store keeps (authorization codes, access
//! and refresh tokens, consents, signing keys). Only hashes of codes and tokens are ever stored.

use std::fmt;

use time::OffsetDateTime;

use super::{InvalidInput, Role, SessionId, TokenHash, User, UserId};

/// The scopes Gatehouse understands; others in a request are ignored (RFC 6749 §3.3 lets the server grant
/// fewer scopes than asked for, and says so in the token response).
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "roles"];

/// A set of granted scopes, always in [`SUPPORTED_SCOPES`] order so that stored and compared forms agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<&'static str>);

impl Scopes {
    /// The supported scopes named in a space-separated `scope` parameter.
    pub fn parse(raw: &str) -> Self {
        let asked: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
        Self(SUPPORTED_SCOPES.into_iter().filter(|s| asked.contains(s)).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(&scope)
    }

    /// Whether every scope of `other` is also in this set.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.iter().all(|s| self.0.contains(s))
    }

    /// The scopes of `self` that `granted` does not hold yet (what a consent page must ask for).
    pub fn missing_from(&self, granted: &Scopes) -> Scopes {
        Scopes(self.0.iter().copied().filter(|s| !granted.0.contains(s)).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// No secret: a public client (a browser or a desktop app); PKCE is required instead.
    None,
    /// Hex SHA-256 of a generated secret of 256 random bits (`gatehouse clients add`, `client_secret_file`):
    /// a fast hash is enough for a secret that cannot be guessed, as for session tokens.
    Sha256(TokenHash),
    /// An argon2id PHC string (`client_secret_hash`, made by `gatehouse hash`), for secrets people chose.
    Phc(String),
}

/// Where a client's definition lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    Config,
    Database,
}

/// A relying party allowed to sign people in with Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    pub client_id: String,
    /// Shown on the consent page; the client id when not set.
    pub name: String,
    pub secret: ClientSecret,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Apps of the same organisation: no consent page.
    pub first_party: bool,
    /// When not empty, only users holding one of these roles may sign in to this client.
    pub allowed_roles: Vec<Role>,
    pub source: ClientSource,
    pub created_at: Option<OffsetDateTime>,
}

impl OidcClient {
    pub fn is_public(&self) -> bool {
        self.secret == ClientSecret::None
    }

    /// Exact, character-for-character comparison (OAuth 2.0 Security BCP §4.1.3): no prefix, no
    /// normalisation, no wildcards.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered == uri)
    }

    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|registered| registered == uri)
    }

    /// Whether `user` may sign in to this client.
    pub fn admits(&self, user: &User) -> bool {
        self.allowed_roles.is_empty() || self.allowed_roles.iter().any(|role| user.roles.contains(role))
    }
}

/// Checks a client id as written in config or on the command line.
pub fn parse_client_id(raw: &str) -> Result<String, InvalidInput> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        // No ':', which separates id and secret in HTTP Basic.
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(InvalidInput::new(format!("'{raw}' is not a client id: use 1-128 letters, digits, '-', '_' or '.'")))
    }
}

/// Checks a redirect URI a client registers: absolute http(s), no fragment (RFC 6749 §3.1.2). Plain http is
/// allowed, because apps on a laptop or a private network run without TLS; the docs say to prefer https.
pub fn parse_redirect_uri(raw: &str) -> Result<String, InvalidInput> {
    let bad = |why: &str| InvalidInput::new(format!("'{raw}' is not a usable redirect URI: {why}"));
    let url = url::Url::parse(raw).map_err(|_| {
        bad("it must be a whole http:// or https:// URL with a host, like https://app.example.com/oauth2callback")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(
            "it must be an http:// or https:// URL with a host, like https://app.example.com/oauth2callback",
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("it must not have a #fragment"));
    }
    Ok(raw.to_owned())
}

/// Whether a redirect URI sends codes over plain http to another machine (loopback addresses, an app on the
/// same computer, are fine).
pub fn is_plain_http_to_another_machine(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// What a stored code or token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantTokenKind {
    Code,
    Access,
    Refresh,
}

impl GrantTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantTokenKind::Code => "code",
            GrantTokenKind::Access => "access",
            GrantTokenKind::Refresh => "refresh",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [GrantTokenKind::Code, GrantTokenKind::Access, GrantTokenKind::Refresh].into_iter().find(|k| k.as_str() == raw)
    }
}

/// An authorization code, access token or refresh token as stored (by hash). Every token issued from one
/// authorization shares its `grant_id`, so a replayed code or a reused refresh token revokes them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantToken {
    pub token_hash: TokenHash,
    pub kind: GrantTokenKind,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: UserId,
    /// The Gatehouse session the user authorized from (the ID token's `sid`).
    pub session_id: Option<SessionId>,
    pub scope: String,
    pub auth_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Codes and refresh tokens: when they were used (a second use is a replay).
    pub used_at: Option<OffsetDateTime>,
    /// Codes only: what the token request must repeat or prove.
    pub redirect_uri: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
}

/// A user's standing permission for a client to receive some scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: String,
    pub scope: String,
    pub granted_at: OffsetDateTime,
}

/// A JWS signing algorithm Gatehouse can sign ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [SigningAlgorithm::Rs256, SigningAlgorithm::Es256, SigningAlgorithm::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| InvalidInput::new(format!("'{raw}' is not a signing algorithm; use RS256, ES256 or EdDSA")))
    }
}

/// A signing key as stored: the private key (PKCS#8, base64) never leaves the database and the server.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub private_pkcs8: String,
    /// The public JWK (JSON), as published at the JWKS endpoint.
    pub public_jwk: String,
    pub created_at: OffsetDateTime,
    /// When a newer key replaced it; it stays published while tokens it signed may still be checked.
    pub retired_at: Option<OffsetDateTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_keep_only_what_is_supported_in_a_fixed_order() {
        let scopes = Scopes::parse("email  openid offline_access roles");
        assert_eq!(scopes.to_string(), "openid email roles");
        assert!(scopes.contains("roles") && !scopes.contains("profile"));
        let granted = Scopes::parse("openid email");
        assert!(scopes.covers(&granted) && !granted.covers(&scopes));
        assert_eq!(scopes.missing_from(&granted).to_string(), "roles");
        assert_eq!(Scopes::parse("").to_string(), "");
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let client = OidcClient {
            client_id: "app".into(),
            name: "app".into(),
            secret: ClientSecret::None,
            redirect_uris: vec!["https://app.example.com/oauth2callback".into()],
            post_logout_redirect_uris: vec![],
            first_party: false,
            allowed_roles: vec![],
            source: ClientSource::Config,
            created_at: None,
        };
        assert!(client.has_redirect_uri("https://app.example.com/oauth2callback"));
        for near_miss in [
            "https://app.example.com/oauth2callback/",
            "https://app.example.com/oauth2callback?x=1",
            "https://APP.example.com/oauth2callback",
            "https://app.example.com:443/oauth2callback",
            "https://app.example.com/oauth2callback/../evil",
            "https://app.example.com.evil.com/oauth2callback",
        ] {
            assert!(!client.has_redirect_uri(near_miss), "{near_miss}");
        }
    }

    #[test]
    fn client_ids_and_redirect_uris_are_checked() {
        assert!(parse_client_id("sales-dashboard").is_ok());
        assert!(parse_client_id("").is_err() && parse_client_id("a b").is_err() && parse_client_id("a/b").is_err());
        assert!(parse_client_id("a:b").is_err(), "':' would split HTTP Basic credentials");
        assert!(parse_redirect_uri("http://localhost:8501/oauth2callback").is_ok());
        assert!(parse_redirect_uri("https://x.example/cb#frag").is_err());
        assert!(parse_redirect_uri("javascript:alert(1)").is_err());
        assert!(parse_redirect_uri("/relative").is_err());
    }

    #[test]
    fn algorithms_parse_by_name() {
        assert_eq!(SigningAlgorithm::parse("rs256").unwrap(), SigningAlgorithm::Rs256);
        assert_eq!(SigningAlgorithm::parse("EdDSA").unwrap(), SigningAlgorithm::EdDsa);
        assert!(SigningAlgorithm::parse("HS256").is_err());
    }
}
