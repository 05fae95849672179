//! Signing in and out through the real HTTP surface: redirects, the sign-in form, cookies, CSRF, open
//! redirects, throttling, bcrypt upgrade and the audit trail.

mod common;

use common::upstream::start_echo_upstream;
use common::{Clock, TestGatehouse, extract_csrf};
use gatehouse::domain::{AuditKind, NewUser, Username};
use gatehouse::store::AuditFilter;

const PASSWORD: &str = "correct horse battery";

/// The `Set-Cookie` header that sets the session cookie.
fn session_set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gatehouse_session="))
        .expect("no session cookie was set")
}

#[tokio::test]
async fn unauthenticated_page_load_is_redirected_with_its_return_path() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let response = browser.get("/reports/q3?year=2026&x=a%20b").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/_gatehouse/login?rd=%2Freports%2Fq3%3Fyear%3D2026%26x%3Da%2520b");
}

#[tokio::test]
async fn unauthenticated_api_call_gets_401_json() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let response = gatehouse.browser().api_get("/_stcore/host-config").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn login_page_is_accessible_and_carries_a_csrf_token() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let response = browser.get("/_gatehouse/login?rd=%2Fapp").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let html = response.text().await.unwrap();
    for needle in [
        r#"<label for="username">Username or email</label>"#,
        r#"autocomplete="username""#,
        r#"autocomplete="current-password""#,
        r#"name="remember""#,
        r#"name="rd" value="&#x2f;app""#,
        r#"name="viewport""#,
    ] {
        assert!(html.contains(needle), "login page lacks {needle}");
    }
    assert!(!extract_csrf(&html).is_empty());
    assert!(browser.cookies.contains_key("gatehouse_csrf"));
}

#[tokio::test]
async fn sign_in_sets_a_session_cookie_and_returns_to_the_page_asked_for() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    let mut browser = gatehouse.browser();
    let response = browser.sign_in_to("alice", PASSWORD, false, "/reports?q=1").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/reports?q=1");
    let cookie = session_set_cookie(&response);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Max-Age"), "a session without remember-me must end with the browser: {cookie}");
    // The token is 256 bits of base64url and the database only has its hash.
    let token = browser.session_cookie().unwrap().clone();
    assert_eq!(token.len(), 43);
    let user = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    let sessions = gatehouse.store().sessions_for_user(&user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(user.login_count, 1);
    assert!(user.last_login_at.is_some());
    let report = browser.echo("/reports?q=1", &[]).await;
    assert_eq!(common::echoed_header(&report, "x-gatehouse-user"), vec!["alice"]);
}

#[tokio::test]
async fn sign_in_by_email_and_remember_me_gives_a_persistent_cookie() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    let response = browser.sign_in("Alice@Example.com", PASSWORD, true).await;
    assert_eq!(response.status(), 303);
    let cookie = session_set_cookie(&response);
    assert!(cookie.contains(&format!("Max-Age={}", 30 * 86400)), "{cookie}");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    let wrong = browser.sign_in("alice", "not the password", false).await;
    assert_eq!(wrong.status(), 401);
    let wrong_html = wrong.text().await.unwrap();
    let unknown = browser.sign_in("mallory", "not the password", false).await;
    assert_eq!(unknown.status(), 401);
    let unknown_html = unknown.text().await.unwrap();
    for html in [&wrong_html, &unknown_html] {
        assert!(html.contains(r#"role="alert">Incorrect username or password."#), "{html}");
    }
    assert!(browser.session_cookie().is_none());
    let failures = gatehouse
        .store()
        .list_audit(&AuditFilter { kind: Some(AuditKind::SignInFailed), ..Default::default() })
        .await
        .unwrap();
    let reasons: Vec<_> = failures.iter().filter_map(|e| e.detail.clone()).collect();
    assert!(
        reasons.contains(&"bad_password".to_owned()) && reasons.contains(&"unknown_user".to_owned()),
        "{reasons:?}"
    );
    assert!(failures.iter().all(|e| e.client_ip.as_deref() == Some("127.0.0.1")));
}

#[tokio::test]
async fn disabled_users_cannot_sign_in_and_lose_their_session() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let alice = gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    gatehouse.store().set_disabled(&alice.id, true, gatehouse.clock.now()).await.unwrap();
    assert_eq!(browser.get("/").await.status(), 303, "a disabled user's session must stop working");
    let response = browser.sign_in("alice", PASSWORD, false).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("disabled"));
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let stolen_cookie = browser.session_cookie().unwrap().clone();
    assert_eq!(browser.get("/").await.status(), 200);

    let response = browser.sign_out().await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/_gatehouse/login?signed_out=1");
    assert!(browser.session_cookie().is_none(), "the cookie must be cleared");
    assert_eq!(browser.get("/").await.status(), 303);

    // Replaying the old cookie does not work either: the session is gone server-side.
    browser.cookies.insert("gatehouse_session".into(), stolen_cookie);
    assert_eq!(browser.get("/").await.status(), 303);
    let notice = browser.get("/_gatehouse/login?signed_out=1").await.text().await.unwrap();
    assert!(notice.contains("You have been signed out."));
}

#[tokio::test]
async fn open_redirect_payloads_all_land_on_the_root() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let payloads = [
        "//evil.com",
        "/\\evil.com",
        "https:evil.com",
        "https://evil.com/",
        "%2F%2Fevil.com",
        "/%2F%2Fevil.com",
        "/%5Cevil.com",
        "/%255C%255Cevil.com",
        "\\/evil.com",
        "/\t/evil.com",
        "javascript:alert(1)",
    ];
    for payload in payloads {
        let mut browser = gatehouse.browser();
        let response = browser.sign_in_to("alice", PASSWORD, false, payload).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/", "payload {payload:?} escaped");
        // An already signed-in visit to the login page with the payload is also sent home.
        let encoded: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        let again = browser.get(&format!("/_gatehouse/login?rd={encoded}")).await;
        assert_eq!(again.headers()["location"], "/", "payload {payload:?} escaped via GET");
    }
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_or_from_another_site_are_refused() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    let token = browser.csrf_token("/_gatehouse/login").await;
    let fields = |t: &str| {
        vec![("username", "alice".to_owned()), ("password", PASSWORD.to_owned()), ("csrf_token", t.to_owned())]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();

    // Missing or forged token.
    for bad in ["", "forged-token"] {
        let f = as_refs(&fields(bad));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = browser.post_form("/_gatehouse/login", &f).await;
        assert_eq!(response.status(), 403, "token {bad:?} accepted");
        assert!(browser.session_cookie().is_none());
    }
    // Valid token, but the request is cross-site.
    let f = as_refs(&fields(&token));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cross_site = browser.post_form_with("/_gatehouse/login", &f, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross_site.status(), 403);
    let foreign_origin = browser.post_form_with("/_gatehouse/login", &f, &[("origin", "https://evil.example")]).await;
    assert_eq!(foreign_origin.status(), 403);
    assert!(browser.session_cookie().is_none());
    // Another browser's cookie with this token fails too (the token is bound to the cookie).
    let mut other = gatehouse.browser();
    other.csrf_token("/_gatehouse/login").await;
    assert_eq!(other.post_form("/_gatehouse/login", &f).await.status(), 403);
    // The genuine submission works.
    assert_eq!(browser.post_form("/_gatehouse/login", &f).await.status(), 303);

    // Logout needs the token as well: a forged logout leaves the session alive.
    let forged = browser.post_form("/_gatehouse/logout", &[("csrf_token", "nope")]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(browser.get("/").await.status(), 200);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_with_a_growing_delay_that_expires() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut attacker = gatehouse.browser();
    for attempt in 1..=6 {
        let response = attacker.sign_in("alice", "guess", false).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // After five free failures the sixth set a 2 s delay: even the right password waits.
    let blocked = attacker.sign_in("alice", PASSWORD, false).await;
    assert_eq!(blocked.status(), 429);
    assert_eq!(blocked.headers()["retry-after"], "2");
    assert!(blocked.text().await.unwrap().contains("Too many failed sign-in attempts"));

    gatehouse.clock.advance(time::Duration::seconds(2));
    assert_eq!(attacker.sign_in("alice", "guess", false).await.status(), 401);
    let longer = attacker.sign_in("alice", PASSWORD, false).await;
    assert_eq!(longer.status(), 429);
    assert_eq!(longer.headers()["retry-after"], "4", "the delay doubles");

    gatehouse.clock.advance(time::Duration::seconds(4));
    assert_eq!(attacker.sign_in("alice", PASSWORD, false).await.status(), 303, "the lock-out is never permanent");
    let throttled = gatehouse
        .store()
        .list_audit(&AuditFilter { kind: Some(AuditKind::SignInFailed), ..Default::default() })
        .await
        .unwrap();
    assert!(throttled.iter().any(|e| e.detail.as_deref() == Some("throttled")));
}

#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_real_user_out() {
    // Behind a trusted proxy, X-Forwarded-For tells clients apart.
    let gatehouse =
        TestGatehouse::start_with(Some(start_echo_upstream().await), "server.trusted_proxies = [\"127.0.0.1\"]\n")
            .await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut attacker = gatehouse.browser();
    let token = attacker.csrf_token("/_gatehouse/login").await;
    for _ in 0..8 {
        let fields = [("username", "alice"), ("password", "guess"), ("csrf_token", token.as_str())];
        let origin = format!("http://{}", gatehouse.addr);
        attacker
            .post_form_with("/_gatehouse/login", &fields, &[("x-forwarded-for", "203.0.113.66"), ("origin", &origin)])
            .await;
    }
    let mut alice = gatehouse.browser();
    let token = alice.csrf_token("/_gatehouse/login").await;
    let fields = [("username", "alice"), ("password", PASSWORD), ("csrf_token", token.as_str())];
    let origin = format!("http://{}", gatehouse.addr);
    let response = alice
        .post_form_with("/_gatehouse/login", &fields, &[("x-forwarded-for", "198.51.100.7"), ("origin", &origin)])
        .await;
    assert_eq!(response.status(), 303, "the real user, from her own address, still gets in");
}

#[tokio::test]
async fn bcrypt_hashes_from_streamlit_authenticator_work_and_are_upgraded() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let bcrypt_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    assert!(bcrypt_hash.starts_with("$2b$"));
    let new = NewUser {
        username: Username::parse("bob").unwrap(),
        email: None,
        display_name: "Bob".into(),
        roles: vec![],
        password_hash: Some(bcrypt_hash.clone()),
        email_verified: true,
        pending_until: None,
        disabled: false,
    };
    gatehouse.store().create_user(new, gatehouse.clock.now()).await.unwrap();
    let mut browser = gatehouse.browser();
    assert_eq!(browser.sign_in("bob", PASSWORD, false).await.status(), 303);
    let bob = gatehouse.store().user_by_login("bob").await.unwrap().unwrap();
    let stored = bob.password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "not upgraded: {stored}");
    let rehash_events = gatehouse
        .store()
        .list_audit(&AuditFilter { kind: Some(AuditKind::PasswordRehashed), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rehash_events.len(), 1);
    // And the upgraded hash keeps working.
    let mut again = gatehouse.browser();
    assert_eq!(again.sign_in("bob", PASSWORD, false).await.status(), 303);
}

#[tokio::test]
async fn successes_and_sign_outs_are_audited_with_client_details() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    browser.sign_out().await;
    let events = gatehouse
        .store()
        .list_audit(&AuditFilter { subject_or_actor: Some("alice".into()), ..Default::default() })
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&AuditKind::SignIn) && kinds.contains(&AuditKind::SignOut), "{kinds:?}");
    assert!(events.iter().all(|e| e.client_ip.as_deref() == Some("127.0.0.1")));
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut attacker = gatehouse.browser();
    let token = attacker.csrf_token("/_gatehouse/login").await;
    let cookie = attacker.cookie_header();
    let origin = format!("http://{}", gatehouse.addr);
    let mut attempts = Vec::new();
    for _ in 0..20 {
        let client = attacker.client.clone();
        let (url, cookie, origin, token) =
            (attacker.url("/_gatehouse/login"), cookie.clone(), origin.clone(), token.clone());
        attempts.push(tokio::spawn(async move {
            let body =
                serde_urlencoded::to_string([("username", "alice"), ("password", "guess"), ("csrf_token", &token)])
                    .unwrap();
            let response = client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .header("origin", origin)
                .body(body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }));
    }
    let mut checked = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == 401 {
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "only the free failures and the first delayed one may reach the password check");
}
