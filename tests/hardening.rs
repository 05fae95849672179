//! Bad input never panics and never leaks: malformed cookies, headers and forms get clear 400s, oversized
//! bodies 413, unknown Gatehouse paths a 404 page; health, metrics and the first-run setup behave.

mod common;

use common::upstream::{closed_port, start_echo_upstream};
use common::{Clock, TestGatehouse, extract_csrf};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn malformed_cookies_are_treated_as_no_session() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    for value in ["", "x", "%%%", "a=b=c", &"A".repeat(5000), "\"quoted\"", "🍪"] {
        browser.cookies.insert("gatehouse_session".into(), value.to_owned());
        let response = browser.get("/").await;
        assert_eq!(response.status(), 303, "cookie {value:?}");
    }
    // Non-UTF-8 bytes in headers, sent on the wire directly.
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nCookie: gatehouse_session=\xff\xfe\r\nX-Forwarded-For: \xff\r\nConnection: close\r\n\r\n";
    let response = common::raw::send(gatehouse.addr, request).await;
    assert_eq!(response.status, 303, "{}", response.head);
}

#[tokio::test]
async fn malformed_forms_get_a_400_page() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let token = browser.csrf_token("/_gatehouse/login").await;
    let origin = format!("http://{}", gatehouse.addr);
    let cases: Vec<(&str, String)> = vec![
        ("application/x-www-form-urlencoded", "username=alice".to_owned()),
        // (A missing username is the shared-password form's shape: that one is a wrong password, not a 400.)
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&username=alice")),
        ("application/json", format!("{{\"username\":\"alice\",\"password\":\"x\",\"csrf_token\":\"{token}\"}}")),
        ("text/plain", "garbage".to_owned()),
    ];
    for (content_type, body) in cases {
        let response = browser
            .client
            .post(browser.url("/_gatehouse/login"))
            .header("content-type", content_type)
            .header("cookie", browser.cookie_header())
            .header("origin", &origin)
            .header("accept", "text/html")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type} {body}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Request ID:"), "{html}");
    }
    // Invalid percent-escapes decode leniently and then fail the CSRF check: refused, not crashed.
    let response = browser
        .client
        .post(browser.url("/_gatehouse/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", browser.cookie_header())
        .body("username=%ZZ&password=%&csrf_token=%")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The server is still healthy afterwards.
    assert_eq!(browser.get("/_gatehouse/login").await.status(), 200);
}

#[tokio::test]
async fn oversized_form_bodies_are_refused() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let token = browser.csrf_token("/_gatehouse/login").await;
    let huge = "x".repeat(200 * 1024);
    let response =
        browser.post_form("/_gatehouse/login", &[("username", &huge), ("password", "x"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("Request too large"));
}

#[tokio::test]
async fn unknown_gatehouse_paths_get_a_404_page_and_never_reach_the_app() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    for path in ["/_gatehouse/nope", "/_gatehouse/static/missing.css", "/_gatehouse/", "/_gatehouse"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Page not found") && html.contains("Request ID:"), "{path}: {html}");
    }
    let response = browser.client.delete(browser.url("/_gatehouse/login")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn pages_carry_security_headers_and_never_show_secrets() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let response = browser.get("/_gatehouse/login").await;
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
}

#[tokio::test]
async fn health_reports_the_database_and_the_app() {
    let healthy = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let response = healthy.browser().client.get(healthy.url("/_gatehouse/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["status"], "ok");
    assert_eq!(body["upstream"]["status"], "ok");

    let app_down = TestGatehouse::start(Some(closed_port().await)).await;
    let response = app_down.browser().client.get(app_down.url("/_gatehouse/health")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["upstream"]["status"], "down");
}

#[tokio::test]
async fn metrics_expose_requests_latency_sign_ins_and_sessions() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    browser.get("/").await;
    gatehouse.browser().sign_in("alice", "wrong", false).await;
    let text = browser.client.get(browser.url("/_gatehouse/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        "gatehouse_http_requests_total{status=\"200\"}",
        "gatehouse_proxy_duration_seconds_bucket",
        "gatehouse_sign_ins_total{outcome=\"success\"}",
        "gatehouse_sign_ins_total{outcome=\"invalid_credentials\"}",
        "gatehouse_active_sessions",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

/// Issues a setup link as a start does (none once an enabled administrator exists).
async fn issue_link(gatehouse: &TestGatehouse) -> Option<gatehouse::web::setup::SetupLink> {
    gatehouse::web::setup::issue_setup_link(
        gatehouse.store(),
        gatehouse.clock.now(),
        &gatehouse.state.config.server.public_url,
        &gatehouse.state.config.admin.role,
    )
    .await
    .unwrap()
}

/// Issues a setup link as a first start does, and returns its path and query.
async fn setup_path(gatehouse: &TestGatehouse) -> String {
    let link = issue_link(gatehouse).await.expect("no administrator yet, so a link is issued");
    link.url.split_once(&gatehouse.addr.to_string()).unwrap().1.to_owned()
}

#[tokio::test]
async fn first_run_setup_creates_one_admin_with_a_single_use_link() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let path = setup_path(&gatehouse).await;
    assert!(path.starts_with("/_gatehouse/setup?token="));
    let token = path.split_once("token=").unwrap().1.to_owned();

    let mut browser = gatehouse.browser();
    assert_eq!(browser.get("/_gatehouse/setup?token=wrong").await.status(), 403);
    let page = browser.get(&path).await;
    assert_eq!(page.status(), 200);
    let csrf = extract_csrf(&page.text().await.unwrap());
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("token", token.as_str()),
        ("username", "root"),
        ("name", "Root Admin"),
        ("email", "root@example.com"),
        ("password", "short"),
        ("password_confirm", "short"),
    ];
    let weak = browser.post_form("/_gatehouse/setup", &fields).await;
    assert_eq!(weak.status(), 422);
    assert!(weak.text().await.unwrap().contains("at least 8 characters"));

    fields[5] = ("password", "a sturdy passphrase");
    fields[6] = ("password_confirm", "a sturdy passphrase");
    let created = browser.post_form("/_gatehouse/setup", &fields).await;
    assert_eq!(created.status(), 303);
    assert!(browser.session_cookie().is_some(), "the new admin is signed in");
    let root = gatehouse.store().user_by_login("root").await.unwrap().unwrap();
    assert!(root.has_role("admin"));

    // Used up, and closed now that a user exists.
    let again = browser.post_form("/_gatehouse/setup", &fields).await;
    assert_eq!(again.status(), 403);
    assert_eq!(gatehouse.store().count_users().await.unwrap(), 1);
    assert!(issue_link(&gatehouse).await.is_none());
}

#[tokio::test]
async fn with_accounts_but_no_administrator_the_setup_link_can_make_one_of_them_the_administrator() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", "alice's passphrase", &["analyst"]).await;
    let link = issue_link(&gatehouse).await.expect("accounts but no administrator: a link is issued");
    assert!(link.accounts_exist);
    let path = link.url.split_once(&gatehouse.addr.to_string()).unwrap().1.to_owned();
    let token = path.split_once("token=").unwrap().1.to_owned();

    let mut browser = gatehouse.browser();
    let page = browser.get(&path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Make an existing account the administrator"), "{html}");
    assert!(html.contains("Or create a new administrator"), "{html}");
    let csrf = extract_csrf(&html);

    // Knowing the link is not enough: the account's own password is needed, and a wrong one changes nothing.
    let wrong = [("csrf_token", csrf.as_str()), ("token", &token), ("username", "alice"), ("password", "guess")];
    let refused = browser.post_form("/_gatehouse/setup/promote", &wrong).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("Incorrect username or password."));
    assert!(browser.session_cookie().is_none());
    let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    assert!(!alice.has_role("admin"));
    // Without the link, the account's password alone promotes nobody either.
    let no_link =
        [("csrf_token", csrf.as_str()), ("token", "wrong"), ("username", "alice"), ("password", "alice's passphrase")];
    assert_eq!(browser.post_form("/_gatehouse/setup/promote", &no_link).await.status(), 403);

    let right = [
        ("csrf_token", csrf.as_str()),
        ("token", &token),
        ("username", "alice@example.com"),
        ("password", "alice's passphrase"),
    ];
    let promoted = browser.post_form("/_gatehouse/setup/promote", &right).await;
    assert_eq!(promoted.status(), 303);
    assert!(browser.session_cookie().is_some(), "the new administrator is signed in");
    let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    assert!(alice.has_role("admin") && alice.has_role("analyst"), "{:?}", alice.roles);
    assert_eq!(browser.get("/_gatehouse/admin").await.status(), 200, "and reaches the console");

    // Used up (the token itself, not only closed by the new administrator), and no new link now.
    let hash = gatehouse::domain::TokenHash::of(&token);
    assert!(!gatehouse.store().one_time_token_is_valid("setup", &hash, gatehouse.clock.now()).await.unwrap());
    let mut other = gatehouse.browser();
    let other_csrf = other.csrf_token("/_gatehouse/login").await;
    let replay = [
        ("csrf_token", other_csrf.as_str()),
        ("token", &token),
        ("username", "alice"),
        ("password", "alice's passphrase"),
    ];
    let again = other.post_form("/_gatehouse/setup/promote", &replay).await;
    assert_eq!(again.status(), 403);
    assert!(again.text().await.unwrap().contains("invalid, used or expired"));
    assert!(issue_link(&gatehouse).await.is_none());
    let audit = gatehouse.store().list_audit(&Default::default()).await.unwrap();
    let setup = audit.iter().find(|event| event.kind == gatehouse::domain::AuditKind::SetupCompleted).unwrap();
    assert_eq!((setup.actor.as_deref(), setup.detail.as_deref()), (Some("alice"), Some("promoted")));
}

#[tokio::test]
async fn a_taken_name_for_the_new_administrator_is_refused_without_using_the_link_up() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", "alice's passphrase", &["analyst"]).await;
    let path = setup_path(&gatehouse).await;
    let token = path.split_once("token=").unwrap().1.to_owned();
    let mut browser = gatehouse.browser();
    let csrf = extract_csrf(&browser.get(&path).await.text().await.unwrap());
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("token", token.as_str()),
        ("username", "alice"),
        ("name", ""),
        ("email", "new@example.com"),
        ("password", "a sturdy passphrase"),
        ("password_confirm", "a sturdy passphrase"),
    ];
    let taken = browser.post_form("/_gatehouse/setup", &fields).await;
    assert_eq!(taken.status(), 422);
    assert!(taken.text().await.unwrap().contains("That username is already taken."));
    fields[2] = ("username", "root");
    fields[4] = ("email", "alice@example.com");
    let taken = browser.post_form("/_gatehouse/setup", &fields).await;
    assert_eq!(taken.status(), 422);
    assert!(taken.text().await.unwrap().contains("already used by another account"));
    // The link still works.
    fields[4] = ("email", "root@example.com");
    assert_eq!(browser.post_form("/_gatehouse/setup", &fields).await.status(), 303);
    assert!(gatehouse.store().user_by_login("root").await.unwrap().unwrap().has_role("admin"));
}

#[tokio::test]
async fn a_disabled_administrator_does_not_count_and_a_new_one_can_be_created_beside_the_accounts() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let old = gatehouse.add_user("old", "old's passphrase", &["admin"]).await;
    assert!(issue_link(&gatehouse).await.is_none());
    gatehouse.store().set_disabled(&old.id, true, gatehouse.clock.now()).await.unwrap();
    let path = setup_path(&gatehouse).await;
    let token = path.split_once("token=").unwrap().1.to_owned();

    let mut browser = gatehouse.browser();
    let csrf = extract_csrf(&browser.get(&path).await.text().await.unwrap());
    // The disabled account cannot be the one promoted back...
    let disabled =
        [("csrf_token", csrf.as_str()), ("token", &token), ("username", "old"), ("password", "old's passphrase")];
    let refused = browser.post_form("/_gatehouse/setup/promote", &disabled).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("disabled"));
    // ...but a new administrator can be created with the same link.
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("token", token.as_str()),
        ("username", "root"),
        ("name", "Root Admin"),
        ("email", "root@example.com"),
        ("password", "a sturdy passphrase"),
        ("password_confirm", "a sturdy passphrase"),
    ];
    assert_eq!(browser.post_form("/_gatehouse/setup", &fields).await.status(), 303);
    assert!(gatehouse.store().user_by_login("root").await.unwrap().unwrap().has_role("admin"));
    assert!(issue_link(&gatehouse).await.is_none());
}

#[tokio::test]
async fn setup_links_expire_after_an_hour() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let path = setup_path(&gatehouse).await;
    gatehouse.clock.advance(time::Duration::minutes(61));
    assert_eq!(gatehouse.browser().get(&path).await.status(), 403);
}

#[tokio::test]
async fn serve_without_an_app_serves_only_gatehouse_pages() {
    let gatehouse = TestGatehouse::start(None).await;
    let mut browser = gatehouse.browser();
    assert_eq!(browser.get("/_gatehouse/login").await.status(), 200);
    assert_eq!(browser.get("/anything").await.status(), 404);
    let health: serde_json::Value =
        browser.client.get(browser.url("/_gatehouse/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["upstream"]["status"], "none");
}
