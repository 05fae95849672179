//! The OpenID Connect provider over HTTP, as a relying party sees it: discovery, the code flow with PKCE
//! from signed out to refresh, ID tokens validated against the JWKS, and every refusal of the protocol (bad
//! clients and redirect URIs, replays, wrong verifiers, expired codes, wrong secrets, tampered tokens).
//! Sessions, consent and sign-out are in tests/oidc_sessions.rs; keys and the CLI in tests/oidc_admin.rs;
//! third-party clients in tests/e2e/test_oidc.py.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::oidc::*;
use common::{Clock, TestGatehouse, postgres::TestSchema};
use serde_json::Value;
use sha2::{Digest, Sha256};

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
