//! The OpenID Connect provider over HTTP, as a relying party sees it: discovery, the code flow with PKCE
//! (signed out, signed in, consent, roles, prompt values), tokens and their validation against the JWKS,
//! userinfo, refresh rotation and reuse detection, replays, end-session, key rotation and the clients CLI.
//! Every refusal named by the issue is checked here (third-party clients are in tests/e2e/test_oidc.py).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Browser, Clock, TestGatehouse, postgres::TestSchema};
use gatehouse::domain::oidc::SigningAlgorithm;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "0123456789abcdef0123456789abcdef-app-secret";
const REDIRECT: &str = "http://127.0.0.1:8502/oauth2callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Three clients: a first-party confidential app, a third-party app limited to analysts, a public client.
fn clients_toml(dir: &std::path::Path) -> String {
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

async fn provider_on(db_url: Option<String>, extra: &str) -> TestGatehouse {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{extra}", clients_toml(dir.path()));
    let server = TestGatehouse::start_on(db_url, None, &toml).await;
    // The secret file was read into the configuration; the folder can go.
    drop(dir);
    server.add_user("olivia", "correct horse battery", &["analyst", "viewer"]).await;
    server.add_user("victor", "correct horse battery", &["viewer"]).await;
    server
}

fn authorize_path(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
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

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The query parameters of a redirect to the client.
fn redirect_params(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Follows an authorization request for a signed-in browser and returns the code.
async fn code_for(browser: &mut Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let to = location(&response);
    assert!(to.starts_with(REDIRECT), "{to}");
    let params = redirect_params(&to);
    assert_eq!(params["state"], "st-123");
    params["code"].clone()
}

/// A token request as a relying party makes it (HTTP Basic unless `basic` is `None`).
async fn token_request(
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

async fn exchange(server: &TestGatehouse, code: &str, verifier: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token_request(server, Some(("app", SECRET)), &form).await
}

/// The `rd` (return path) of a redirect to the sign-in page.
fn rd_of(to_login: &str) -> String {
    let url = url::Url::parse(&format!("http://x{to_login}")).unwrap();
    url.query_pairs().find(|(k, _)| k == "rd").unwrap().1.into_owned()
}

/// Answers a forced sign-in (`reauth`) as olivia and returns the response (a redirect to `rd`).
async fn sign_in_again(browser: &mut Browser, to_login: &str, rd: &str) -> reqwest::Response {
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

async fn refresh_with(server: &TestGatehouse, refresh_token: &str) -> reqwest::Response {
    token_request(server, Some(("app", SECRET)), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .await
}

async fn jwks(server: &TestGatehouse) -> JwkSet {
    reqwest::get(server.url("/_gatehouse/oidc/jwks")).await.unwrap().json().await.unwrap()
}

/// Verifies an ID token the way a relying party does: key by `kid` from the JWKS, signature, iss, aud, exp.
async fn verify_id_token(server: &TestGatehouse, token: &str, audience: &str) -> Result<Value, String> {
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

async fn userinfo(server: &TestGatehouse, access_token: &str) -> reqwest::Response {
    reqwest::Client::new().get(server.url("/_gatehouse/oidc/userinfo")).bearer_auth(access_token).send().await.unwrap()
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let server = provider_on(None, "").await;
    let response = reqwest::get(server.url("/_gatehouse/.well-known/openid-configuration")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let doc: Value = response.json().await.unwrap();
    let issuer = server.url("/_gatehouse");
    assert_eq!(doc["issuer"], issuer.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("userinfo_endpoint", "/oidc/userinfo"),
        ("jwks_uri", "/oidc/jwks"),
        ("end_session_endpoint", "/oidc/logout"),
    ] {
        assert_eq!(doc[key], format!("{issuer}{path}"), "{key}");
    }
    assert_eq!(doc["scopes_supported"], serde_json::json!(["openid", "profile", "email", "roles"]));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["grant_types_supported"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    let keys = jwks(&server).await;
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].common.key_algorithm, Some(jsonwebtoken::jwk::KeyAlgorithm::RS256));
    assert!(serde_json::to_string(&keys).unwrap().find("\"d\"").is_none(), "no private parts published");
}

/// The whole flow, signed out at first: sign-in page, back to authorize, code, tokens, userinfo, refresh.
async fn full_code_flow(server: &TestGatehouse) {
    let mut browser = server.browser();
    let path = authorize_path("app", REDIRECT, &[("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]);
    let response = browser.get(&path).await;
    assert_eq!(response.status(), 303);
    let to_login = location(&response);
    assert!(to_login.starts_with("/_gatehouse/login?rd="), "{to_login}");
    let rd = rd_of(&to_login);
    // The sign-in page names the app and lets its form lead to the app's origin (CSP form-action).
    let login_page = browser.get(&to_login).await;
    let csp = login_page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' http://127.0.0.1:8502;"), "{csp}");
    assert!(login_page.text().await.unwrap().contains("Sales app"));
    let signed_in = browser.sign_in_to("olivia", "correct horse battery", false, &rd).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), rd);
    let code = code_for(&mut browser, &rd).await;

    let response = exchange(server, &code, Some(VERIFIER)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email roles");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = verify_id_token(server, tokens["id_token"].as_str().unwrap(), "app").await.unwrap();
    let olivia = server.store().user_by_login("olivia").await.unwrap().unwrap();
    assert_eq!(claims["sub"], olivia.id.0.as_str());
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["azp"], "app");
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["name"], "Olivia Example");
    assert_eq!(claims["preferred_username"], "olivia");
    assert_eq!(claims["email"], "olivia@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["roles"], serde_json::json!(["analyst", "viewer"]));
    let now = server.clock.now().unix_timestamp();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert!(claims["auth_time"].as_i64().unwrap() <= now);
    let digest = Sha256::digest(access.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    let info: Value = userinfo(server, access).await.json().await.unwrap();
    assert_eq!(info["sub"], olivia.id.0.as_str());
    assert_eq!(info["email"], "olivia@example.com");
    assert_eq!(info["roles"], serde_json::json!(["analyst", "viewer"]));

    // Refresh: new tokens, the old refresh token is spent; presenting it again revokes the whole grant.
    let old_refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh = |token: String| async move { refresh_with(server, &token).await };
    let refreshed: Value = refresh(old_refresh.to_owned()).await.json().await.unwrap();
    let new_refresh = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, old_refresh);
    let claims = verify_id_token(server, refreshed["id_token"].as_str().unwrap(), "app").await.unwrap();
    assert_eq!(claims["sub"], olivia.id.0.as_str());
    assert!(claims.get("nonce").is_none(), "a refreshed ID token carries no nonce");
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(userinfo(server, new_access).await.status(), 200);

    let reused = refresh(old_refresh.to_owned()).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(error_of(&reused.json().await.unwrap()), "invalid_grant");
    assert_eq!(userinfo(server, new_access).await.status(), 401, "reuse revoked the grant's access token");
    assert_eq!(error_of(&refresh(new_refresh.to_owned()).await.json().await.unwrap()), "invalid_grant");

    let kinds: Vec<String> = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert!(kinds.contains(&"app_sign_in".to_owned()) && kinds.contains(&"token_replay".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn code_flow_with_pkce_signs_in_validates_and_refreshes_on_sqlite() {
    full_code_flow(&provider_on(None, "").await).await;
}

#[tokio::test]
async fn code_flow_with_pkce_signs_in_validates_and_refreshes_on_postgres() {
    let Some(schema) = TestSchema::for_test("oidc code flow").await else { return };
    full_code_flow(&provider_on(Some(schema.url()), "").await).await;
}

#[tokio::test]
async fn bad_clients_and_redirect_uris_get_a_page_never_a_redirect() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    for path in [
        authorize_path("app", "http://127.0.0.1:8502/oauth2callback/evil", &[]),
        authorize_path("app", "https://evil.example/oauth2callback", &[]),
        authorize_path("nobody", REDIRECT, &[]),
        "/_gatehouse/oidc/authorize?response_type=code&client_id=app&scope=openid".to_owned(),
        format!("{}&client_id=app", authorize_path("app", REDIRECT, &[])),
    ] {
        let response = browser.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<h1>Bad request</h1>"), "{page}");
    }
    // The page shows what the app sent, to compare with what is registered.
    let page =
        browser.get(&authorize_path("app", "https://evil.example/oauth2callback", &[])).await.text().await.unwrap();
    assert!(
        page.contains("client_id: app, redirect_uri: https:&#x2f;&#x2f;evil.example&#x2f;oauth2callback"),
        "{page}"
    );
    // Without an app, Gatehouse's front page is the account page (where "Back to the app" leads).
    assert_eq!(location(&browser.get("/").await), "/_gatehouse/account");
}

#[tokio::test]
async fn protocol_errors_go_back_to_the_client_with_state() {
    let server = provider_on(None, "").await;
    let mut anonymous = server.browser();
    // prompt=none without a session: login_required, with state and iss.
    let response = anonymous.get(&authorize_path("app", REDIRECT, &[("prompt", "none")])).await;
    let params = redirect_params(&location(&response));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.url("/_gatehouse"));
    // A public client must use PKCE.
    let response = anonymous.get(&authorize_path("spa", "https://spa.example/cb", &[])).await;
    assert_eq!(redirect_params(&location(&response))["error"], "invalid_request");
    // Only the code flow.
    let token_flow = authorize_path("app", REDIRECT, &[]).replace("response_type=code", "response_type=token");
    assert_eq!(redirect_params(&location(&anonymous.get(&token_flow).await))["error"], "unsupported_response_type");
}

#[tokio::test]
async fn codes_are_single_use_short_lived_and_bound_to_client_redirect_and_verifier() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];

    // Replay: the second exchange is refused and the tokens of the first stop working.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &pkce)).await;
    let first: Value = exchange(&server, &code, Some(VERIFIER)).await.json().await.unwrap();
    let replay = exchange(&server, &code, Some(VERIFIER)).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(error_of(&replay.json().await.unwrap()), "invalid_grant");
    assert_eq!(userinfo(&server, first["access_token"].as_str().unwrap()).await.status(), 401);
    let refresh = refresh_with(&server, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_of(&refresh.json().await.unwrap()), "invalid_grant");

    // Wrong verifier, no verifier.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &pkce)).await;
    let wrong = exchange(&server, &code, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj")).await;
    assert_eq!(error_of(&wrong.json().await.unwrap()), "invalid_grant");
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &pkce)).await;
    assert_eq!(error_of(&exchange(&server, &code, None).await.json().await.unwrap()), "invalid_grant");

    // Expired: a code lives 60 seconds.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    server.clock.advance(time::Duration::seconds(61));
    assert_eq!(error_of(&exchange(&server, &code, None).await.json().await.unwrap()), "invalid_grant");

    // Another redirect URI than the request's.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let other_uri = token_request(
        &server,
        Some(("app", SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:8502/other")],
    )
    .await;
    assert_eq!(error_of(&other_uri.json().await.unwrap()), "invalid_grant");

    // Another client's code (the partner client authenticates fine, but the code is not its): refused, and
    // not used up, so another client cannot burn (and so revoke) a code it does not own.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let stolen = token_request(
        &server,
        Some(("partner", SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(error_of(&stolen.json().await.unwrap()), "invalid_grant");
    assert_eq!(exchange(&server, &code, None).await.status(), 200, "the owner can still use it");

    // Racing exchanges of one code: exactly one wins, and the replays revoke what it got.
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let attempts = (0..8).map(|_| exchange(&server, &code, None));
    let answers = futures_util::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for answer in answers {
        if answer.status() == 200 {
            winners.push(answer.json::<Value>().await.unwrap());
        } else {
            assert_eq!(error_of(&answer.json().await.unwrap()), "invalid_grant");
        }
    }
    assert_eq!(winners.len(), 1, "one exchange wins");
    assert_eq!(userinfo(&server, winners[0]["access_token"].as_str().unwrap()).await.status(), 401);
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    for (basic, extra) in [
        (Some(("app", "not-the-secret-at-all-0000000000")), vec![]),
        (Some(("unknown", SECRET)), vec![]),
        (None, vec![("client_id", "app")]),
        (None, vec![("client_id", "app"), ("client_secret", "wrong")]),
    ] {
        let mut fields = form.to_vec();
        fields.extend(extra.iter().copied());
        let response = token_request(&server, basic, &fields).await;
        assert_eq!(response.status(), 401);
        if basic.is_some() {
            assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_of(&body), "invalid_client");
        assert!(!body.to_string().contains(SECRET));
    }
    // The code survived the failed attempts (clients are checked before codes are used), and the secret
    // also works in the form (client_secret_post).
    let mut fields = form.to_vec();
    fields.extend([("client_id", "app"), ("client_secret", SECRET)]);
    assert_eq!(token_request(&server, None, &fields).await.status(), 200);
    // Errors are RFC 6749 JSON, not Gatehouse pages.
    let bad = token_request(&server, Some(("app", SECRET)), &[("grant_type", "password")]).await;
    assert_eq!(error_of(&bad.json().await.unwrap()), "unsupported_grant_type");
}

#[tokio::test]
async fn a_tampered_id_token_fails_verification_and_is_no_logout_hint() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(verify_id_token(&server, id_token, "app").await.is_ok());
    // Change the payload (victor's name instead of olivia's) and keep the signature.
    let parts: Vec<&str> = id_token.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap().replace("olivia", "victor");
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload), parts[2]);
    assert!(verify_id_token(&server, &forged, "app").await.unwrap_err().contains("InvalidSignature"));
    // A forged hint does not sign anyone out without asking.
    let query = format!("/_gatehouse/oidc/logout?id_token_hint={forged}&client_id=app");
    let response = browser.get(&query).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Sign out?"));
    assert_eq!(browser.get("/_gatehouse/account").await.status(), 200, "still signed in");
}

#[tokio::test]
async fn consent_is_asked_once_for_third_party_clients_and_roles_limit_who_signs_in() {
    let server = provider_on(None, "").await;
    let partner = "https://partner.example/cb";
    let mut olivia = server.signed_in("olivia", "correct horse battery").await;
    let path = authorize_path("partner", partner, &[]);
    let page = olivia.get(&path).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' https://partner.example;"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Allow Partner tool?") && html.contains("Your email address") && html.contains("Your roles"));
    let csrf = common::extract_csrf(&html);
    let consent = |decision: &'static str, csrf: String| {
        let mut fields: Vec<(String, String)> = vec![
            ("csrf_token".into(), csrf),
            ("decision".into(), decision.into()),
            ("response_type".into(), "code".into()),
            ("client_id".into(), "partner".into()),
            ("redirect_uri".into(), partner.into()),
            ("scope".into(), "openid profile email roles".into()),
            ("state".into(), "st-123".into()),
        ];
        fields.shrink_to_fit();
        fields
    };
    let fields = consent("allow", csrf.clone());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let allowed = olivia.post_form("/_gatehouse/oidc/consent", &fields).await;
    assert_eq!(allowed.status(), 303);
    assert!(redirect_params(&location(&allowed)).contains_key("code"));
    // Remembered: straight back next time; prompt=consent asks again; Deny sends access_denied.
    let again = olivia.get(&path).await;
    assert!(redirect_params(&location(&again)).contains_key("code"));
    assert_eq!(olivia.get(&authorize_path("partner", partner, &[("prompt", "consent")])).await.status(), 200);
    let fields = consent("deny", csrf);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let denied = olivia.post_form("/_gatehouse/oidc/consent", &fields).await;
    assert_eq!(redirect_params(&location(&denied))["error"], "access_denied");
    // Without the CSRF token nothing is granted.
    let forged = olivia.post_form("/_gatehouse/oidc/consent", &fields[1..]).await;
    assert_eq!(forged.status(), 403);

    // Victor lacks the analyst role: a page saying so, or access_denied for prompt=none.
    let mut victor = server.signed_in("victor", "correct horse battery").await;
    let refused = victor.get(&path).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.text().await.unwrap().contains("Partner tool is open only to people with the role &#x27;analyst&#x27;")
    );
    let silent = victor.get(&authorize_path("partner", partner, &[("prompt", "none")])).await;
    assert_eq!(redirect_params(&location(&silent))["error"], "access_denied");
    // "Sign in as someone else" keeps the request: the sign-in form, then the consent page for olivia.
    let html = victor.get(&path).await.text().await.unwrap();
    let link = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&").replace("&#x2f;", "/"))
        .find(|href| href.starts_with("/_gatehouse/login"))
        .unwrap_or_else(|| panic!("no sign-in link: {html}"));
    assert!(link.starts_with("/_gatehouse/login?rd=") && link.contains("reauth=1"), "{link}");
    let form = victor.get(&link).await;
    assert_eq!(form.status(), 200, "the form is shown to the signed-in victor");
    let to_login = link.clone();
    let token = victor.csrf_token(&to_login).await;
    let fields = [
        ("username", "olivia"),
        ("password", "correct horse battery"),
        ("csrf_token", token.as_str()),
        ("rd", &rd_of(&to_login)),
        ("reauth", "1"),
    ];
    let back = victor.post_form("/_gatehouse/login", &fields).await;
    assert_eq!(location(&back), rd_of(&to_login));
    let consent_again = victor.get(&rd_of(&to_login)).await;
    assert!(redirect_params(&location(&consent_again)).contains_key("code"), "olivia agreed before");
}

#[tokio::test]
async fn single_sign_on_prompt_login_and_max_age() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    // Signed in: straight back with a code, even for prompt=select_account (what st.login() sends).
    code_for(&mut browser, &authorize_path("app", REDIRECT, &[("prompt", "select_account")])).await;
    let old_session = browser.session_cookie().unwrap().clone();

    server.clock.advance(time::Duration::seconds(120));
    let response = browser.get(&authorize_path("app", REDIRECT, &[("prompt", "login")])).await;
    let to_login = location(&response);
    assert!(to_login.contains("reauth=1"), "{to_login}");
    let form = browser.get(&to_login).await;
    assert_eq!(form.status(), 200, "the form is shown although the browser is signed in");
    assert!(form.text().await.unwrap().contains("value=\"olivia\""));
    let rd = rd_of(&to_login);
    let signed_in = sign_in_again(&mut browser, &to_login, &rd).await;
    assert_eq!(location(&signed_in), rd);
    assert_ne!(browser.session_cookie().unwrap(), &old_session);
    let code = code_for(&mut browser, &rd).await;
    let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    let claims = verify_id_token(&server, tokens["id_token"].as_str().unwrap(), "app").await.unwrap();
    assert_eq!(claims["auth_time"], server.clock.now().unix_timestamp(), "auth_time is the new sign-in");
    // The replaced session is over.
    let mut stale = server.browser();
    stale.cookies.insert("gatehouse_session".into(), old_session);
    assert_eq!(stale.get("/_gatehouse/account").await.status(), 303);

    // max_age: a sign-in older than asked for is repeated; prompt=none then says login_required.
    server.clock.advance(time::Duration::seconds(300));
    let response = browser.get(&authorize_path("app", REDIRECT, &[("max_age", "60")])).await;
    assert!(location(&response).starts_with("/_gatehouse/login?"));
    let response = browser.get(&authorize_path("app", REDIRECT, &[("max_age", "60"), ("prompt", "none")])).await;
    assert_eq!(redirect_params(&location(&response))["error"], "login_required");
    code_for(&mut browser, &authorize_path("app", REDIRECT, &[("max_age", "3600")])).await;
}

#[tokio::test]
async fn end_session_signs_out_and_returns_only_to_registered_addresses() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    // An unregistered post-logout address: an error page, no redirect, still signed in.
    let evil = format!(
        "/_gatehouse/oidc/logout?client_id=app&id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
    );
    let response = browser.get(&evil).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert_eq!(browser.get("/_gatehouse/account").await.status(), 200);

    // What st.logout() sends: client_id, id_token_hint, its /oauth2callback, no state.
    let logout = format!(
        "/_gatehouse/oidc/logout?client_id=app&id_token_hint={id_token}&post_logout_redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let response = browser.get(&logout).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), REDIRECT);
    assert!(browser.session_cookie().is_none(), "the cookie was removed");
    assert_eq!(
        userinfo(&server, tokens["access_token"].as_str().unwrap()).await.status(),
        401,
        "the session's tokens end too"
    );
    let signed_out = browser.get(&authorize_path("app", REDIRECT, &[])).await;
    assert!(location(&signed_out).starts_with("/_gatehouse/login?"), "a new sign-in asks for the password");

    // Without a hint the user confirms first; with state, it comes back.
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let ask = format!("{logout}&state=s1").replace(&format!("&id_token_hint={id_token}"), "");
    let page = browser.get(&ask).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sales app") && html.contains("Sign out?"));
    let csrf = common::extract_csrf(&html);
    let confirmed = browser
        .post_form(
            "/_gatehouse/oidc/logout",
            &[
                ("csrf_token", &csrf),
                ("confirm", "1"),
                ("client_id", "app"),
                ("post_logout_redirect_uri", REDIRECT),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(location(&confirmed), format!("{REDIRECT}?state=s1"));
    assert_eq!(browser.get("/_gatehouse/account").await.status(), 303, "signed out");
}

#[tokio::test]
async fn rotated_keys_stay_published_until_their_tokens_expire() {
    let server = provider_on(None, "oidc.id_token_lifetime = \"10m\"\n").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let first: Value = exchange(&server, &code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await, None)
        .await
        .json()
        .await
        .unwrap();
    let old_token = first["id_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();

    let rotated =
        gatehouse::oidc::keys::rotate(server.store(), SigningAlgorithm::Rs256, server.clock.now()).await.unwrap();
    let second: Value = exchange(&server, &code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await, None)
        .await
        .json()
        .await
        .unwrap();
    let new_token = second["id_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(new_token).unwrap().kid.unwrap(), rotated.kid);
    assert!(verify_id_token(&server, &old_token, "app").await.is_ok(), "the old key is still published");
    assert!(verify_id_token(&server, new_token, "app").await.is_ok());

    server.clock.advance(time::Duration::seconds(16 * 60));
    let kids: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![rotated.kid.clone()], "the old key ({old_kid}) is gone once its tokens expired");
}

#[tokio::test]
async fn es256_and_eddsa_are_selectable() {
    for algorithm in ["ES256", "EdDSA"] {
        let server = provider_on(None, &format!("oidc.signing_algorithm = \"{algorithm}\"\n")).await;
        let mut browser = server.signed_in("olivia", "correct horse battery").await;
        let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
        let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(format!("{:?}", jsonwebtoken::decode_header(token).unwrap().alg), algorithm);
        let claims = verify_id_token(&server, token, "app").await.unwrap();
        assert_eq!(claims["preferred_username"], "olivia");
    }
}

#[tokio::test]
async fn clients_from_the_cli_sign_people_in_until_removed() {
    let cli = common::cli::Cli::new();
    cli.ok(&["migrate"], None);
    let added = cli.json(&[
        "clients",
        "add",
        "reports",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--name",
        "Reports",
        "--json",
    ]);
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);
    let public = cli.json(&["clients", "add", "desk", "--redirect-uri", REDIRECT, "--public", "--json"]);
    let remote = cli.run(&["clients", "add", "wiki", "--redirect-uri", "http://wiki.internal/oauth2callback"], None);
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("warning: http://wiki.internal/oauth2callback is plain http")
    );
    cli.ok(&["clients", "remove", "wiki"], None);
    assert!(public["client_secret"].is_null());
    let listed = cli.ok(&["clients", "list"], None);
    assert!(listed.contains("reports  (confidential, first-party; database)"), "{listed}");
    assert!(!listed.contains(&secret), "the secret is never shown again");
    let json = cli.json(&["clients", "list", "--json"]);
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(!json.to_string().contains(&secret));
    // Bad input: exit code 2 with a message.
    for args in [
        vec!["clients", "add", "reports", "--redirect-uri", REDIRECT],
        vec!["clients", "add", "x y", "--redirect-uri", REDIRECT],
        vec!["clients", "add", "z", "--redirect-uri", "not a url"],
        vec!["clients", "remove", "nobody"],
    ] {
        let output = cli.run(&args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }

    let server = TestGatehouse::start_on(Some(cli.db_url()), None, "").await;
    server.add_user("olivia", "correct horse battery", &[]).await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("reports", REDIRECT, &[])).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens = token_request(&server, Some(("reports", &secret)), &form).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();

    cli.ok(&["clients", "remove", "reports"], None);
    assert_eq!(userinfo(&server, tokens["access_token"].as_str().unwrap()).await.status(), 401);
    let refresh = token_request(
        &server,
        Some(("reports", &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(refresh.status(), 401);

    // `keys rotate` from the shell: the running server signs with the new key at once.
    let before: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    let rotated = cli.ok(&["keys", "rotate"], None);
    let after: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(after.len(), before.len() + 1, "{rotated}");
    assert!(after.iter().any(|kid| rotated.contains(kid.as_str()) && !before.contains(kid)), "{rotated}");
    let listed = cli.ok(&["keys", "list"], None);
    assert_eq!(listed.matches("current").count(), 1, "{listed}");
    assert_eq!(cli.run(&["keys", "rotate", "--algorithm", "HS256"], None).status.code(), Some(2));
}

#[tokio::test]
async fn tokens_end_with_the_gatehouse_session_they_came_from() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access).await.status(), 200);
    // Signing out of Gatehouse (not through the app) ends what the app received too.
    browser.sign_out().await;
    assert_eq!(userinfo(&server, access).await.status(), 401);
    let refresh = refresh_with(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_of(&refresh.json().await.unwrap()), "invalid_grant");

    // A code whose session ended before the exchange is refused too.
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    browser.sign_out().await;
    assert_eq!(error_of(&exchange(&server, &code, None).await.json().await.unwrap()), "invalid_grant");

    // Refresh tokens never outlive the session's absolute end (7 days by default).
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let mut tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    for _ in 0..8 {
        server.clock.advance(time::Duration::hours(11));
        let refreshed = refresh_with(&server, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), 200, "refreshing keeps the session active");
        tokens = refreshed.json().await.unwrap();
    }
    server.clock.advance(time::Duration::days(7));
    let late = refresh_with(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_of(&late.json().await.unwrap()), "invalid_grant");
}

#[tokio::test]
async fn forced_sign_ins_cannot_be_skipped_or_looped_and_consent_survives_signing_in() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    // An old or a future login_after from the client does not satisfy prompt=login, and asks for a sign-in
    // after now (not after the client's value, which would loop).
    for forged in ["0", "99999999999"] {
        let response =
            browser.get(&authorize_path("app", REDIRECT, &[("prompt", "login"), ("login_after", forged)])).await;
        let to_login = location(&response);
        assert!(to_login.contains("reauth=1"), "{forged}: {to_login}");
        let now = server.clock.now().unix_timestamp().to_string();
        assert!(to_login.contains(&format!("login_after%3D{now}")), "{to_login}");
    }
    // max_age=0 right after a forced sign-in is satisfied by that sign-in, even a second later.
    server.clock.advance(time::Duration::seconds(1));
    let response = browser.get(&authorize_path("app", REDIRECT, &[("max_age", "0")])).await;
    let to_login = location(&response);
    let rd = rd_of(&to_login);
    sign_in_again(&mut browser, &to_login, &rd).await;
    server.clock.advance(time::Duration::seconds(2));
    code_for(&mut browser, &rd).await;

    // prompt=consent from a signed-out browser: the consent page comes after the sign-in, first-party or not.
    let mut fresh = server.browser();
    let response = fresh.get(&authorize_path("app", REDIRECT, &[("prompt", "consent")])).await;
    let to_login = location(&response);
    let rd = rd_of(&to_login);
    fresh.sign_in_to("olivia", "correct horse battery", false, &rd).await;
    let page = fresh.get(&rd).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Allow Sales app?"));
}

#[tokio::test]
async fn hints_must_match_the_browser_user_and_session() {
    let server = provider_on(None, "").await;
    let mut olivia = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut olivia, &authorize_path("app", REDIRECT, &[])).await;
    let olivia_token: Value = exchange(&server, &code, None).await.json().await.unwrap();
    let olivia_id_token = olivia_token["id_token"].as_str().unwrap().to_owned();

    // prompt=none with a hint for olivia, in a browser signed in as victor: login_required.
    let mut victor = server.signed_in("victor", "correct horse battery").await;
    let silent =
        victor.get(&authorize_path("app", REDIRECT, &[("prompt", "none"), ("id_token_hint", &olivia_id_token)])).await;
    assert_eq!(redirect_params(&location(&silent))["error"], "login_required");
    let matching =
        olivia.get(&authorize_path("app", REDIRECT, &[("prompt", "none"), ("id_token_hint", &olivia_id_token)])).await;
    assert!(redirect_params(&location(&matching)).contains_key("code"));

    // An ID token from an earlier session of the same user does not sign the new session out unasked.
    olivia.sign_out().await;
    let mut olivia = server.signed_in("olivia", "correct horse battery").await;
    let logout = format!("/_gatehouse/oidc/logout?client_id=app&id_token_hint={olivia_id_token}");
    let page = olivia.get(&logout).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign out?"));
    assert_eq!(olivia.get("/_gatehouse/account").await.status(), 200, "still signed in");
}

#[tokio::test]
async fn repeated_client_authentication_failures_pause_that_client_and_address() {
    let server = provider_on(None, "").await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", "whatever")];
    for _ in 0..10 {
        let response = token_request(&server, Some(("app", "wrong-wrong-wrong-wrong")), &form).await;
        assert_eq!(error_of(&response.json().await.unwrap()), "invalid_client");
    }
    // Now even the right secret is refused for a while, without being checked...
    let paused = token_request(&server, Some(("app", SECRET)), &form).await;
    assert_eq!(paused.status(), 401);
    let body: Value = paused.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("too many"), "{body}");
    // ...and accepted again after the pause.
    server.clock.advance(time::Duration::minutes(11));
    let resumed = token_request(&server, Some(("app", SECRET)), &form).await;
    assert_eq!(error_of(&resumed.json().await.unwrap()), "invalid_grant", "the client is authenticated again");
    // A success forgets the failures: nine more do not pause the client.
    for _ in 0..9 {
        token_request(&server, Some(("app", "wrong-wrong-wrong-wrong")), &form).await;
    }
    let still = token_request(&server, Some(("app", SECRET)), &form).await;
    assert_eq!(error_of(&still.json().await.unwrap()), "invalid_grant");
}

#[test]
fn check_config_lists_clients_and_warns_about_plain_http_redirects() {
    let cli = common::cli::Cli::new();
    cli.ok(&["users", "add", "olivia", "--role", "finance", "--password-stdin"], Some("correct horse battery"));
    let secret = cli.write("secret", "0123456789abcdef0123456789abcdef\n");
    let config = cli.write(
        "gatehouse.toml",
        &format!(
            r#"
[[oidc.clients]]
client_id = "reports"
client_secret_file = "{secret}"
redirect_uris = ["http://reports.example.com/oauth2callback"]
[[oidc.clients]]
client_id = "laptop"
redirect_uris = ["http://localhost:8502/oauth2callback"]
first_party = true
allowed_roles = ["finanse", "finance"]
"#
        ),
    );
    let output = cli.run(&["check-config", "--config", &config], None);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.contains("oidc issuer http://127.0.0.1:8501/_gatehouse (RS256)"), "{stdout}");
    assert!(stdout.contains("oidc client reports (confidential) -> http://reports.example.com/oauth2callback"));
    assert!(stdout.contains("oidc client laptop (public, first-party)"), "{stdout}");
    assert!(stderr.contains("client 'reports' returns to http://reports.example.com/oauth2callback over plain http"));
    assert!(!stderr.contains("'laptop'"), "loopback redirects are fine: {stderr}");
    assert!(stderr.contains("no account holds the role 'finanse' named in [[oidc.clients]] (a typo?)"), "{stderr}");
    assert!(!stderr.contains("'finance'"), "olivia holds finance: {stderr}");

    let inline = cli.write(
        "inline.toml",
        "[[oidc.clients]]\nclient_id = \"x\"\nclient_secret = \"hunter2\"\nredirect_uris = [\"https://x.example/cb\"]\n",
    );
    let output = cli.run(&["check-config", "--config", &inline], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("oidc.clients[0]") && stderr.contains("client_secret_file"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}

#[tokio::test]
async fn signing_in_again_keeps_the_apps_of_the_same_user_and_ends_another_users() {
    let server = provider_on(None, "").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let first: Value = exchange(&server, &code, None).await.json().await.unwrap();
    // Another app asks for a fresh sign-in (prompt=login): olivia types her password again.
    server.clock.advance(time::Duration::seconds(30));
    let to_login = location(&browser.get(&authorize_path("app", REDIRECT, &[("prompt", "login")])).await);
    let rd = rd_of(&to_login);
    sign_in_again(&mut browser, &to_login, &rd).await;
    code_for(&mut browser, &rd).await;
    // The first app's tokens still work: they moved to the new session.
    assert_eq!(userinfo(&server, first["access_token"].as_str().unwrap()).await.status(), 200);
    let refreshed = refresh_with(&server, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();

    // Someone else signing in on this browser ends olivia's session, and her apps' tokens with it.
    let to_login = location(&browser.get(&authorize_path("app", REDIRECT, &[("prompt", "login")])).await);
    let token = browser.csrf_token(&to_login).await;
    let fields = [
        ("username", "victor"),
        ("password", "correct horse battery"),
        ("csrf_token", token.as_str()),
        ("rd", &rd_of(&to_login)),
        ("reauth", "1"),
    ];
    browser.post_form("/_gatehouse/login", &fields).await;
    assert_eq!(userinfo(&server, refreshed["access_token"].as_str().unwrap()).await.status(), 401);
}

#[tokio::test]
async fn access_tokens_end_before_the_session_could_idle_out_and_max_age_asks_once() {
    let server = provider_on(None, "session.idle_timeout = \"30m\"\n").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
    let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 1800, "the access token ends when the idle session would");
    // Refreshing just before then keeps the session (and the app) going.
    server.clock.advance(time::Duration::minutes(29));
    assert_eq!(refresh_with(&server, tokens["refresh_token"].as_str().unwrap()).await.status(), 200);

    // max_age=0 from a signed-out browser: one sign-in is enough, however long the way back takes.
    let mut fresh = server.browser();
    let to_login = location(&fresh.get(&authorize_path("app", REDIRECT, &[("max_age", "0")])).await);
    let rd = rd_of(&to_login);
    fresh.sign_in_to("olivia", "correct horse battery", false, &rd).await;
    server.clock.advance(time::Duration::seconds(3));
    code_for(&mut fresh, &rd).await;
}
