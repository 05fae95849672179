//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, whether its
//! `id_token_hint` is one of ours, and where the browser may be sent afterwards — only to a
//! `post_logout_redirect_uri` registered for that client, so the endpoint is never an open redirect.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

use super::Provider;
use super::request::{Params, redirect_with};
use crate::domain::oidc::OidcClient;

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The user id.
    pub sub: String,
    pub client_id: String,
    /// The Gatehouse session the token was issued from.
    pub sid: Option<String>,
}

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: Audience,
    sid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    pub client: Option<OidcClient>,
    pub hint: Option<Hint>,
    /// Where to go afterwards (with `state`), if the client asked for a registered address.
    pub redirect: Option<String>,
    /// The raw values, for the confirmation form.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl Provider {
    /// Verifies an ID token we issued: signature by a published key, issuer. Expired tokens are accepted, as
    /// the spec asks: a hint only says who the client believes is signed in.
    pub async fn verify_id_token_hint(&self, token: &str) -> Option<Hint> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let keys = self.keys.published(self.now()).await.ok()?;
        let jwk: Jwk = keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid.as_str()))?;
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[self.issuer()]);
        let claims = jsonwebtoken::decode::<HintClaims>(token, &decoding, &validation).ok()?.claims;
        let client_id = match claims.aud {
            Audience::One(aud) => aud,
            Audience::Many(list) => list.into_iter().next()?,
        };
        Some(Hint { sub: claims.sub, client_id, sid: claims.sid })
    }

    /// Checks a logout request; the error is a sentence for an error page.
    pub async fn logout_request(&self, params: &Params) -> Result<LogoutRequest, &'static str> {
        let hint = match params.get("id_token_hint") {
            // A hint we cannot verify (a key long rotated away, or a forgery) is treated as absent: the user
            // is then asked to confirm, which is what the spec asks for requests without one.
            Some(token) => self.verify_id_token_hint(token).await,
            None => None,
        };
        let client_id = match (params.get("client_id"), &hint) {
            (Some(id), Some(hint)) if id != hint.client_id => {
                return Err("The sign-out request names a client that the ID token was not issued to.");
            }
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(hint)) => Some(hint.client_id.clone()),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => Some(
                self.clients
                    .find(id)
                    .await
                    .map_err(|_| "Gatehouse could not check this request just now. Please try again.")?
                    .ok_or("The application asking to sign you out is not registered with Gatehouse.")?,
            ),
            None => None,
        };
        let post_logout_redirect_uri = params.get("post_logout_redirect_uri").map(str::to_owned);
        let state = params.get("state").map(str::to_owned);
        let redirect = match (&post_logout_redirect_uri, &client) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(
                    "The sign-out request asks to go back to an application but does not say which (client_id).",
                );
            }
            (Some(uri), Some(client)) if client.has_post_logout_redirect_uri(uri) => {
                let state: Vec<(&str, &str)> = state.iter().map(|s| ("state", s.as_str())).collect();
                Some(redirect_with(uri, &state))
            }
            (Some(_), Some(_)) => {
                return Err(
                    "The application asked to be sent to an address it has not registered for after sign-out (post_logout_redirect_uri), so Gatehouse will not send you there.",
                );
            }
        };
        Ok(LogoutRequest { client, hint, redirect, post_logout_redirect_uri, state })
    }
}
