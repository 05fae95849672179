//! What the provider says about a user: the ID token (Core §2, signed) and the userinfo response (§5.3).
//! Both carry the same per-scope claims, because `st.login()` never calls userinfo and takes `st.user` from
//! the ID token alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use time::OffsetDateTime;

use crate::domain::oidc::{Scopes, SigningAlgorithm};
use crate::domain::{SessionId, User};

/// The claims the granted scopes release (Core §5.4), plus `sub`.
pub fn user_claims(user: &User, scopes: &Scopes) -> Map<String, Value> {
    let mut claims = Map::new();
    // The user id: stable for life and never reused, unlike a username an administrator could free up.
    claims.insert("sub".into(), json!(user.id.0));
    if scopes.contains("profile") {
        claims.insert("name".into(), json!(user.name_for_display()));
        claims.insert("preferred_username".into(), json!(user.username.as_str()));
        claims.insert("updated_at".into(), json!(user.updated_at.unix_timestamp()));
    }
    if scopes.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email.as_str()));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.contains("roles") {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        claims.insert("roles".into(), json!(roles));
    }
    claims
}

/// Everything that goes into one ID token.
pub struct IdTokenFacts<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub scopes: &'a Scopes,
    pub session_id: Option<&'a SessionId>,
    pub auth_time: OffsetDateTime,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub algorithm: SigningAlgorithm,
    pub now: OffsetDateTime,
    pub lifetime: std::time::Duration,
}

pub fn id_token_claims(facts: &IdTokenFacts<'_>) -> Map<String, Value> {
    let mut claims = user_claims(facts.user, facts.scopes);
    let iat = facts.now.unix_timestamp();
    let lifetime = i64::try_from(facts.lifetime.as_secs()).unwrap_or(3600);
    claims.insert("iss".into(), json!(facts.issuer));
    claims.insert("aud".into(), json!(facts.client_id));
    claims.insert("azp".into(), json!(facts.client_id));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(iat + lifetime));
    claims.insert("auth_time".into(), json!(facts.auth_time.unix_timestamp()));
    claims.insert("at_hash".into(), json!(at_hash(facts.access_token, facts.algorithm)));
    if let Some(nonce) = facts.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if let Some(session) = facts.session_id {
        claims.insert("sid".into(), json!(session.0));
    }
    claims
}

/// `at_hash` (Core §3.1.3.6): the left half of the access token's hash, with the hash of the signing
/// algorithm (SHA-512 for Ed25519, as OpenID's EdDSA registration says).
pub fn at_hash(access_token: &str, algorithm: SigningAlgorithm) -> String {
    let digest: Vec<u8> = match algorithm {
        SigningAlgorithm::Rs256 | SigningAlgorithm::Es256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        SigningAlgorithm::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OpenID Connect Core, Appendix A.3/A.4 (RS256): access token and its at_hash.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlgorithm::Rs256),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash("x", SigningAlgorithm::EdDsa).len(), 43);
    }
}
