//! The OpenID Connect tests' relying party: a Gatehouse with three clients and two users, authorization
//! requests, code exchanges, and ID tokens verified against the JWKS the way a relying party does.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::{Browser, TestGatehouse};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-app-secret";
pub const REDIRECT: &str = "http://127.0.0.1:8502/oauth2callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Three clients: a first-party confidential app, a third-party app limited to analysts, a public client.
pub fn clients_toml(dir: &std::path::Path) -> String {
    let secret = dir.join("app-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    format!(
        r#"
oidc.clients = [
  {{ client_id = "app", name = "Sales app", client_secret_file = "{}", redirect_uris = ["{REDIRECT}"], post_logout_redirect_uris = ["{REDIRECT}"], first_party = true }},
  {{ client_id = "partner", name = "Partner tool", client_secret_file = "{}", redirect_uris = ["https://partner.example/cb"], allowed_roles = ["analyst"] }},
  {{ client_id = "spa", redirect_uris = ["https://spa.example/cb"], first_party = true }},
]
"#,
        secret.display(),
        secret.display()
    )
}

pub async fn provider_on(db_url: Option<String>, extra: &str) -> TestGatehouse {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{extra}", clients_toml(dir.path()));
    let server = TestGatehouse::start_on(db_url, None, &toml).await;
    // The secret file was read into the configuration; the folder can go.
    drop(dir);
    server.add_user("olivia", "correct horse battery", &["analyst", "viewer"]).await;
    server.add_user("victor", "correct horse battery", &["viewer"]).await;
    server
}

pub fn authorize_path(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email roles"),
        ("state", "st-123"),
        ("nonce", "n-456"),
    ]);
    query.extend_pairs(extra);
    format!("/_gatehouse/oidc/authorize?{}", query.finish())
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The query parameters of a redirect to the client.
pub fn redirect_params(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Follows an authorization request for a signed-in browser and returns the code.
pub async fn code_for(browser: &mut Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let to = location(&response);
    assert!(to.starts_with(REDIRECT), "{to}");
    let params = redirect_params(&to);
    assert_eq!(params["state"], "st-123");
    params["code"].clone()
}

/// A token request as a relying party makes it (HTTP Basic unless `basic` is `None`).
pub async fn token_request(
    server: &TestGatehouse,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/_gatehouse/oidc/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

pub async fn exchange(server: &TestGatehouse, code: &str, verifier: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token_request(server, Some(("app", SECRET)), &form).await
}

/// The `rd` (return path) of a redirect to the sign-in page.
pub fn rd_of(to_login: &str) -> String {
    let url = url::Url::parse(&format!("http://x{to_login}")).unwrap();
    url.query_pairs().find(|(k, _)| k == "rd").unwrap().1.into_owned()
}

/// Answers a forced sign-in (`reauth`) as olivia and returns the response (a redirect to `rd`).
pub async fn sign_in_again(browser: &mut Browser, to_login: &str, rd: &str) -> reqwest::Response {
    let token = browser.csrf_token(to_login).await;
    let fields = [
        ("username", "olivia"),
        ("password", "correct horse battery"),
        ("csrf_token", &token),
        ("rd", rd),
        ("reauth", "1"),
    ];
    browser.post_form("/_gatehouse/login", &fields).await
}

pub async fn refresh_with(server: &TestGatehouse, refresh_token: &str) -> reqwest::Response {
    token_request(server, Some(("app", SECRET)), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .await
}

pub async fn jwks(server: &TestGatehouse) -> JwkSet {
    reqwest::get(server.url("/_gatehouse/oidc/jwks")).await.unwrap().json().await.unwrap()
}

/// Verifies an ID token the way a relying party does: key by `kid` from the JWKS, signature, iss, aud, exp.
pub async fn verify_id_token(server: &TestGatehouse, token: &str, audience: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let set = jwks(server).await;
    let jwk = set.find(&kid).ok_or("kid not published")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.url("/_gatehouse")]);
    validation.set_audience(&[audience]);
    validation.leeway = 0;
    // Tests move the server's clock; the token's times follow it, not the wall clock.
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}

pub async fn userinfo(server: &TestGatehouse, access_token: &str) -> reqwest::Response {
    reqwest::Client::new().get(server.url("/_gatehouse/oidc/userinfo")).bearer_auth(access_token).send().await.unwrap()
}

pub fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}
