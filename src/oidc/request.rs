//! The authorization request (OpenID Connect Core §3.1.2.1) checked in the order that keeps redirects safe:
//! first the client and its exact redirect URI — a failure there is shown on a page, never sent anywhere —
//! then everything else, whose failures go back to the client's redirect URI with `state`.

use std::collections::HashMap;

use super::error::{ErrorCode, OAuthError};
use crate::domain::oidc::{OidcClient, Scopes};

/// Upper bounds on what a client may send; the values end up in URLs, pages and the database.
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

/// Request parameters, each at most once (RFC 6749 §3.1: "parameters MUST NOT be included more than once").
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body). Empty values count
    /// as absent (RFC 6749 §3.1).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            if map.insert(name.into_owned(), value.into_owned()).is_some() {
                return Err("a parameter was sent more than once");
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The `prompt` values (Core §3.1.2.1), all of which Gatehouse honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No page may be shown: answer at once, with `login_required` / `consent_required` if needed.
    pub none: bool,
    /// Ask for the password again even with a live session.
    pub login: bool,
    /// Show the consent page even if the user agreed before (first-party clients included).
    pub consent: bool,
    /// Accepted; Gatehouse holds one account per browser, so there is nothing to choose. `st.login()` always
    /// sends it.
    pub select_account: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: OidcClient,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// PKCE S256 challenge (RFC 7636).
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// Seconds: a sign-in older than this must be repeated.
    pub max_age: Option<i64>,
    /// An ID token the client holds for the user it expects (Core §3.1.2.1); with `prompt=none`, a browser
    /// signed in as someone else gets `login_required`.
    pub id_token_hint: Option<String>,
    /// Unix time set by Gatehouse itself when it sends the browser to sign in again (prompt=login, max_age):
    /// only a sign-in after it counts. A client setting it can only make its own request stricter.
    pub login_after: Option<i64>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The client or redirect URI cannot be trusted: an error page, no redirect (RFC 6749 §4.1.2.1).
    Page(&'static str),
    /// Reported to the client on its (verified) redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

/// The first half of the checks: which client, and where it may be sent. `client` is what the client id
/// named (looked up by the caller), `None` if nothing.
pub fn check_client(params: &Params, client: Option<OidcClient>) -> Result<(OidcClient, String), Rejection> {
    if params.get("client_id").is_none() {
        return Err(Rejection::Page("The request names no client_id."));
    }
    let Some(client) = client else {
        return Err(Rejection::Page("The application asking you to sign in is not registered with Gatehouse."));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(Rejection::Page("The request names no redirect_uri."));
    };
    if !client.has_redirect_uri(redirect_uri) {
        return Err(Rejection::Page(
            "The application asked to be sent to an address it has not registered (redirect_uri), so Gatehouse will not send you there.",
        ));
    }
    Ok((client, redirect_uri.to_owned()))
}

/// Both halves: a complete, checked request.
pub fn check(params: &Params, client: Option<OidcClient>) -> Result<AuthorizationRequest, Rejection> {
    let (client, redirect_uri) = check_client(params, client)?;
    let state = params.get("state").map(str::to_owned);
    let refuse = |code, description| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone().filter(|s| s.len() <= MAX_STATE),
        error: OAuthError::new(code, description),
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(refuse(ErrorCode::InvalidRequest, "state is too long"));
    }
    if params.get("request").is_some() {
        return Err(refuse(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(refuse(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(refuse(ErrorCode::InvalidRequest, "response_type is missing")),
        Some(_) => return Err(refuse(ErrorCode::UnsupportedResponseType, "only response_type=code is supported")),
    }
    if params.get("response_mode").is_some_and(|mode| mode != "query") {
        return Err(refuse(ErrorCode::InvalidRequest, "only response_mode=query is supported"));
    }
    let scopes = Scopes::parse(params.get("scope").unwrap_or(""));
    if !scopes.contains("openid") {
        return Err(refuse(ErrorCode::InvalidScope, "scope must include openid"));
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(refuse(ErrorCode::InvalidRequest, "nonce is too long"));
    }
    let code_challenge = params.get("code_challenge").map(str::to_owned);
    match (params.get("code_challenge_method"), &code_challenge) {
        (_, None) if client.is_public() => {
            return Err(refuse(ErrorCode::InvalidRequest, "public clients must use PKCE (code_challenge with S256)"));
        }
        (Some(_), None) => return Err(refuse(ErrorCode::InvalidRequest, "code_challenge is missing")),
        (Some("S256"), Some(_)) | (None, None) => {}
        // RFC 7636 makes "plain" the default when no method is sent; plain offers no protection, so it is refused.
        (_, Some(_)) => {
            return Err(refuse(ErrorCode::InvalidRequest, "code_challenge_method must be S256"));
        }
    }
    if code_challenge.as_ref().is_some_and(|c| !is_s256_challenge(c)) {
        return Err(refuse(ErrorCode::InvalidRequest, "code_challenge is not a base64url SHA-256 value"));
    }
    let prompt = parse_prompt(params.get("prompt").unwrap_or(""))
        .map_err(|description| refuse(ErrorCode::InvalidRequest, description))?;
    let number = |name: &str| -> Result<Option<i64>, Rejection> {
        match params.get(name) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(refuse(ErrorCode::InvalidRequest, "max_age must be a whole number of seconds")),
            },
        }
    };
    let max_age = number("max_age")?;
    let login_after = number("login_after")?;
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_after,
        id_token_hint: params.get("id_token_hint").map(str::to_owned),
    })
}

fn parse_prompt(raw: &str) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    for value in raw.split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return Err("prompt has an unknown value"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(prompt)
}

/// A base64url SHA-256 is 43 characters; RFC 7636 allows 43-128 of its unreserved set for the challenge.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AuthorizationRequest {
    /// The request as authorize parameters again, for the return trip through the sign-in page or the
    /// consent form. Of `prompt`, only `consent` is kept (the consent page has not been shown yet): `login`
    /// has become `login_after`, and `none` and `select_account` have been acted upon.
    pub fn to_params(&self, login_after: Option<i64>) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scopes.to_string()),
        ];
        let optional = [
            ("state", self.state.clone()),
            ("nonce", self.nonce.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", self.code_challenge.as_ref().map(|_| "S256".to_owned())),
            ("max_age", self.max_age.map(|n| n.to_string())),
            ("login_after", login_after.or(self.login_after).map(|n| n.to_string())),
            ("prompt", self.prompt.consent.then(|| "consent".to_owned())),
        ];
        params.extend(optional.into_iter().filter_map(|(name, value)| value.map(|v| (name, v))));
        params
    }

    /// The authorize URL (a Gatehouse path) that resumes this request.
    pub fn resume_path(&self, login_after: Option<i64>) -> String {
        let query =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(self.to_params(login_after)).finish();
        format!("/_gatehouse/oidc/authorize?{query}")
    }
}

/// `redirect_uri` with `params` added to its query (keeping any query it has).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) if !params.is_empty() => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Nothing to add; or not a URL, which registration rules out.
        _ => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenHash;
    use crate::domain::oidc::{ClientSecret, ClientSource};

    fn client(public: bool) -> OidcClient {
        OidcClient {
            client_id: "app".into(),
            name: "App".into(),
            secret: if public { ClientSecret::None } else { ClientSecret::Sha256(TokenHash::of("s")) },
            redirect_uris: vec!["http://127.0.0.1:8502/oauth2callback".into()],
            post_logout_redirect_uris: vec![],
            first_party: true,
            allowed_roles: vec![],
            source: ClientSource::Config,
            created_at: None,
        }
    }

    const GOOD: &str = "response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A8502%2Foauth2callback\
        &scope=openid%20email&state=xyz&nonce=n1";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &str) -> Params {
        Params::parse(&format!("{GOOD}{extra}")).unwrap()
    }

    fn redirect_error(result: Result<AuthorizationRequest, Rejection>) -> (ErrorCode, Option<String>) {
        match result {
            Err(Rejection::Redirect { error, state, .. }) => (error.code, state),
            other => panic!("expected an error for the client, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_passes_and_round_trips() {
        let request = check(&params("&prompt=select_account"), Some(client(false))).unwrap();
        assert_eq!(request.scopes.to_string(), "openid email");
        assert_eq!(request.state.as_deref(), Some("xyz"));
        assert!(request.prompt.select_account);
        let again = Params::parse(request.resume_path(Some(5)).split_once('?').unwrap().1).unwrap();
        let resumed = check(&again, Some(client(false))).unwrap();
        assert_eq!(resumed.login_after, Some(5));
        assert_eq!(resumed.nonce.as_deref(), Some("n1"));
    }

    #[test]
    fn client_and_redirect_problems_never_redirect() {
        assert!(matches!(check(&params(""), None), Err(Rejection::Page(_))));
        let elsewhere = Params::parse(&GOOD.replace("8502", "8503")).unwrap();
        assert!(matches!(check(&elsewhere, Some(client(false))), Err(Rejection::Page(_))));
        let no_uri = Params::parse("response_type=code&client_id=app&scope=openid").unwrap();
        assert!(matches!(check(&no_uri, Some(client(false))), Err(Rejection::Page(_))));
        assert!(Params::parse("client_id=a&client_id=b").is_err());
    }

    #[test]
    fn other_problems_go_back_to_the_client_with_state() {
        let token = Params::parse(&GOOD.replace("response_type=code", "response_type=token")).unwrap();
        assert_eq!(redirect_error(check(&token, Some(client(false)))).0, ErrorCode::UnsupportedResponseType);
        let no_openid = Params::parse(&GOOD.replace("openid%20email", "email")).unwrap();
        assert_eq!(
            redirect_error(check(&no_openid, Some(client(false)))),
            (ErrorCode::InvalidScope, Some("xyz".to_owned()))
        );
        for (extra, code) in [
            ("&prompt=none%20login", ErrorCode::InvalidRequest),
            ("&prompt=sometimes", ErrorCode::InvalidRequest),
            ("&max_age=-1", ErrorCode::InvalidRequest),
            ("&request=eyJ", ErrorCode::RequestNotSupported),
            (&format!("&code_challenge={CHALLENGE}&code_challenge_method=plain"), ErrorCode::InvalidRequest),
            (&format!("&code_challenge={CHALLENGE}"), ErrorCode::InvalidRequest),
            ("&code_challenge=short&code_challenge_method=S256", ErrorCode::InvalidRequest),
        ] {
            assert_eq!(redirect_error(check(&params(extra), Some(client(false)))).0, code, "{extra}");
        }
    }

    #[test]
    fn public_clients_must_use_pkce() {
        assert_eq!(redirect_error(check(&params(""), Some(client(true)))).0, ErrorCode::InvalidRequest);
        let with_pkce = params(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"));
        assert!(check(&with_pkce, Some(client(true))).is_ok());
    }

    #[test]
    fn errors_are_added_to_the_redirect_uri_query() {
        let url = redirect_with("https://app.example.com/cb?keep=1", &[("error", "access_denied"), ("state", "a b")]);
        assert_eq!(url, "https://app.example.com/cb?keep=1&error=access_denied&state=a+b");
    }
}
