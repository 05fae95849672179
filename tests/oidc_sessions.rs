//! The OpenID Connect provider and Gatehouse sessions: single sign-on, `prompt` and `max_age`, consent and
//! `allowed_roles`, end-session, and app tokens that live and end with the Gatehouse session they came from.

mod common;

use common::Clock;
use common::oidc::*;
use serde_json::Value;

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
