//! Recovery (forgot password, reset link, forgot username) and the account page (display name, email change,
//! password change, the session list) through the real HTTP surface, with links and codes read from the mail
//! Gatehouse wrote. The flows marked `on_both!` run on SQLite and on PostgreSQL.

mod common;

use common::postgres::TestSchema;
use common::upstream::start_echo_upstream;
use common::{Browser, Clock, TestGatehouse, echoed_header};
use gatehouse::domain::AuditKind;
use gatehouse::store::AuditFilter;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "tulip granite orbit lantern";

macro_rules! on_both {
    ($name:ident, $flow:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), "").await;
                $flow(&gatehouse).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(schema) = TestSchema::for_test(concat!(stringify!($name), "::postgres")).await else { return };
                let gatehouse =
                    TestGatehouse::start_on(Some(schema.url()), Some(start_echo_upstream().await), "").await;
                $flow(&gatehouse).await;
            }
        }
    };
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn forgot_password(browser: &mut Browser, login: &str) -> reqwest::Response {
    let token = browser.csrf_token("/_gatehouse/forgot-password").await;
    browser.post_form("/_gatehouse/forgot-password", &[("csrf_token", &token), ("login", login)]).await
}

async fn audit_kinds(gatehouse: &TestGatehouse, subject: &str) -> Vec<AuditKind> {
    let filter = AuditFilter { subject_or_actor: Some(subject.to_owned()), limit: 100, ..Default::default() };
    gatehouse.store().list_audit(&filter).await.unwrap().into_iter().map(|e| e.kind).collect()
}

/// A page's text without its CSRF token (which differs per browser), to compare two answers.
fn without_csrf(html: &str) -> String {
    html.lines().filter(|l| !l.contains("csrf_token")).collect::<Vec<_>>().join("\n")
}

async fn a_reset_link_sets_a_new_password_once_and_ends_every_session(gatehouse: &TestGatehouse) {
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut old_browser = gatehouse.signed_in("alice", PASSWORD).await;

    // Known and unknown addresses get the same page; only the known one gets mail.
    let known = forgot_password(&mut gatehouse.browser(), "alice@example.com").await;
    let unknown = forgot_password(&mut gatehouse.browser(), "nobody@example.com").await;
    assert_eq!(known.status(), 200);
    assert_eq!(unknown.status(), 200);
    let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(without_csrf(&known), without_csrf(&unknown));
    assert!(known.contains("Check your email"));
    gatehouse.outbox().expect_none("nobody@example.com").await;
    let mail = gatehouse.outbox().next("alice@example.com", "reset_password").await;
    let link = mail.link_path();
    assert!(link.starts_with("/_gatehouse/reset-password?token="), "{link}");
    assert!(mail.text.contains("30 minutes"), "{}", mail.text);

    let mut browser = gatehouse.browser();
    let html = browser.get(&link).await.text().await.unwrap();
    assert!(html.contains(r#"autocomplete="new-password""#) && html.contains("alice"), "{html}");
    let csrf = common::extract_csrf(&html);
    let token = mail.link_param("token");
    // A refused password leaves the link usable.
    let weak = browser
        .post_form("/_gatehouse/reset-password", &[("csrf_token", &csrf), ("token", &token), ("password", "password1")])
        .await;
    assert_eq!(weak.status(), 422);
    let fields = [("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD)];
    let response = browser.post_form("/_gatehouse/reset-password", &fields).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/_gatehouse/login?reset=1");

    // Every old session is gone, the old password too; the link cannot be used again.
    assert_eq!(old_browser.get("/").await.status(), 303, "the session from before the reset ended");
    assert_eq!(gatehouse.browser().sign_in("alice", PASSWORD, false).await.status(), 401);
    assert_eq!(gatehouse.browser().sign_in("alice", NEW_PASSWORD, false).await.status(), 303);
    assert_eq!(browser.post_form("/_gatehouse/reset-password", &fields).await.status(), 403);
    gatehouse.outbox().next("alice@example.com", "password_changed").await;
    let kinds = audit_kinds(gatehouse, "alice").await;
    assert!(kinds.contains(&AuditKind::PasswordResetRequested) && kinds.contains(&AuditKind::PasswordReset));
}
on_both!(reset_password, a_reset_link_sets_a_new_password_once_and_ends_every_session);

#[tokio::test]
async fn reset_links_expire_and_only_the_newest_works() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    forgot_password(&mut gatehouse.browser(), "alice").await;
    let first = gatehouse.outbox().next("alice@example.com", "reset_password").await.link_path();
    forgot_password(&mut gatehouse.browser(), "alice").await;
    let second = gatehouse.outbox().next("alice@example.com", "reset_password").await.link_path();
    assert_eq!(gatehouse.browser().get(&first).await.status(), 403, "a newer link replaces the older one");
    assert_eq!(gatehouse.browser().get(&second).await.status(), 200);
    gatehouse.clock.advance(time::Duration::minutes(31));
    assert_eq!(gatehouse.browser().get(&second).await.status(), 403, "links live 30 minutes");
    // Three messages an hour at most: a fourth request is answered the same, but no mail goes out.
    forgot_password(&mut gatehouse.browser(), "alice").await;
    gatehouse.outbox().next("alice@example.com", "reset_password").await;
    assert_eq!(forgot_password(&mut gatehouse.browser(), "alice").await.status(), 200);
    gatehouse.outbox().expect_none("alice@example.com").await;
}

#[tokio::test]
async fn disabled_and_pending_accounts_get_no_recovery_mail() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let user = gatehouse.add_user("carol", PASSWORD, &[]).await;
    gatehouse.store().set_disabled(&user.id, true, gatehouse.clock.now()).await.unwrap();
    assert_eq!(forgot_password(&mut gatehouse.browser(), "carol").await.status(), 200);
    gatehouse.outbox().expect_none("carol@example.com").await;
}

#[tokio::test]
async fn forgot_username_mails_the_username_and_reveals_nothing() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("dave", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    let token = browser.csrf_token("/_gatehouse/forgot-username").await;
    let known = browser
        .post_form("/_gatehouse/forgot-username", &[("csrf_token", &token), ("email", "DAVE@example.com")])
        .await;
    let unknown =
        browser.post_form("/_gatehouse/forgot-username", &[("csrf_token", &token), ("email", "x@example.com")]).await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let mail = gatehouse.outbox().next("dave@example.com", "username_reminder").await;
    assert!(mail.text.contains("dave"), "{}", mail.text);
    gatehouse.outbox().expect_none("x@example.com").await;
}

#[tokio::test]
async fn the_account_page_needs_a_session_and_shows_the_account() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let response = gatehouse.browser().get("/_gatehouse/account").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/_gatehouse/login?rd=%2F_gatehouse%2Faccount");
    gatehouse.add_user("erin", PASSWORD, &["analyst"]).await;
    let mut browser = gatehouse.signed_in("erin", PASSWORD).await;
    let html = browser.get("/_gatehouse/account").await.text().await.unwrap();
    for needle in [
        "erin@example.com",
        "analyst",
        "this browser",
        r#"autocomplete="new-password""#,
        r#"autocomplete="current-password""#,
    ] {
        assert!(html.contains(needle), "account page lacks {needle}");
    }
}

async fn account_page_changes(gatehouse: &TestGatehouse) {
    gatehouse.add_user("frank", PASSWORD, &[]).await;
    gatehouse.add_user("grace", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("frank", PASSWORD).await;
    let mut phone = gatehouse.signed_in("frank", PASSWORD).await;
    let csrf = browser.csrf_token("/_gatehouse/account").await;

    // Display name: saved, and the app sees it on the next request.
    let response =
        browser.post_form("/_gatehouse/account/name", &[("csrf_token", &csrf), ("name", "Frank N. Stein")]).await;
    assert_eq!(location(&response), "/_gatehouse/account?done=name");
    assert_eq!(echoed_header(&browser.echo("/", &[]).await, "x-gatehouse-name"), ["Frank N. Stein"]);

    // Email: needs the current password, goes through a code to the new address, and the old one is told.
    let wrong = [("csrf_token", csrf.as_str()), ("email", "frank@new.example"), ("current_password", "nope nope")];
    let response = browser.post_form("/_gatehouse/account/email", &wrong).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("current password is not right"));
    let fields = [("csrf_token", csrf.as_str()), ("email", "frank@new.example"), ("current_password", PASSWORD)];
    let verify_page = location(&browser.post_form("/_gatehouse/account/email", &fields).await);
    assert!(verify_page.starts_with("/_gatehouse/verify?id="));
    let user = gatehouse.store().user_by_login("frank").await.unwrap().unwrap();
    assert_eq!(user.email.as_ref().unwrap().as_str(), "frank@example.com", "unchanged until verified");
    let code = gatehouse.outbox().next("frank@new.example", "confirm_new_email").await.code();
    let id = verify_page.split("id=").nth(1).unwrap().to_owned();
    let token = browser.csrf_token(&verify_page).await;
    let response =
        browser.post_form("/_gatehouse/verify", &[("csrf_token", &token), ("id", &id), ("code", &code)]).await;
    assert_eq!(location(&response), "/_gatehouse/account?done=email");
    let user = gatehouse.store().user_by_login("frank").await.unwrap().unwrap();
    assert_eq!(user.email.as_ref().unwrap().as_str(), "frank@new.example");
    let notice = gatehouse.outbox().next("frank@example.com", "email_changed").await;
    assert!(notice.text.contains("frank@new.example"));
    // An address another account has gets no code (and the page does not say so).
    let fields = [("csrf_token", csrf.as_str()), ("email", "grace@example.com"), ("current_password", PASSWORD)];
    assert_eq!(browser.post_form("/_gatehouse/account/email", &fields).await.status(), 303);
    gatehouse.outbox().expect_none("grace@example.com").await;

    // The session list shows both sessions; ending the phone's signs the phone out.
    let html = browser.get("/_gatehouse/account").await.text().await.unwrap();
    assert_eq!(html.matches("name=\"session_id\"").count(), 2, "{html}");
    let mine = gatehouse::domain::TokenHash::of(browser.session_cookie().unwrap());
    let (mine, _) = gatehouse.store().session_by_token_hash(&mine).await.unwrap().unwrap();
    let sessions = gatehouse.store().sessions_for_user(&user.id).await.unwrap();
    let other = sessions.iter().find(|s| s.id != mine.id).unwrap();
    assert_eq!(phone.get("/").await.status(), 200);
    let response = browser
        .post_form("/_gatehouse/account/sessions/end", &[("csrf_token", &csrf), ("session_id", &other.id.0)])
        .await;
    assert_eq!(location(&response), "/_gatehouse/account?done=session");
    assert_eq!(phone.get("/").await.status(), 303, "the phone was signed out");
    assert_eq!(browser.get("/").await.status(), 200, "this browser was not");

    // Someone else's session cannot be ended from here.
    let grace = gatehouse.signed_in("grace", PASSWORD).await;
    let grace_hash = gatehouse::domain::TokenHash::of(grace.session_cookie().unwrap());
    let (grace_session, _) = gatehouse.store().session_by_token_hash(&grace_hash).await.unwrap().unwrap();
    let response = browser
        .post_form("/_gatehouse/account/sessions/end", &[("csrf_token", &csrf), ("session_id", &grace_session.id.0)])
        .await;
    assert_eq!(response.status(), 403);
    assert!(gatehouse.store().session_by_token_hash(&grace_hash).await.unwrap().is_some());

    // Password: needs the current one; the other sessions end, this one stays.
    let mut laptop = gatehouse.signed_in("frank", PASSWORD).await;
    let fields = [("csrf_token", csrf.as_str()), ("current_password", "wrong wrong"), ("new_password", NEW_PASSWORD)];
    assert_eq!(browser.post_form("/_gatehouse/account/password", &fields).await.status(), 422);
    let fields = [("csrf_token", csrf.as_str()), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD)];
    let response = browser.post_form("/_gatehouse/account/password", &fields).await;
    assert_eq!(location(&response), "/_gatehouse/account?done=password");
    assert_eq!(laptop.get("/").await.status(), 303, "other sessions end");
    assert_eq!(browser.get("/").await.status(), 200, "the current one stays");
    assert_eq!(gatehouse.browser().sign_in("frank", NEW_PASSWORD, false).await.status(), 303);
    gatehouse.outbox().next("frank@new.example", "password_changed").await;

    let kinds = audit_kinds(gatehouse, "frank").await;
    for kind in [
        AuditKind::ProfileChanged,
        AuditKind::EmailChangeRequested,
        AuditKind::EmailChanged,
        AuditKind::SessionEnded,
        AuditKind::PasswordChanged,
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
}
on_both!(account_changes, account_page_changes);

#[tokio::test]
async fn account_forms_refuse_forged_requests() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("henry", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("henry", PASSWORD).await;
    let forms: [(&str, &[(&str, &str)]); 3] = [
        ("/_gatehouse/account/name", &[("name", "x")]),
        ("/_gatehouse/account/password", &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD)]),
        ("/_gatehouse/account/sessions/end-others", &[]),
    ];
    for (path, fields) in forms {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", "forged"));
        let response = browser.post_form(path, &fields).await;
        assert_eq!(response.status(), 403, "{path}");
    }
    let csrf = browser.csrf_token("/_gatehouse/account").await;
    let cross_site = browser
        .post_form_with(
            "/_gatehouse/account/name",
            &[("csrf_token", &csrf), ("name", "pwned")],
            &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status(), 403);
}

#[tokio::test]
async fn current_password_checks_are_limited() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("ivan", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("ivan", PASSWORD).await;
    let csrf = browser.csrf_token("/_gatehouse/account").await;
    let fields = [("csrf_token", csrf.as_str()), ("current_password", "guess guess"), ("new_password", NEW_PASSWORD)];
    for _ in 0..5 {
        assert_eq!(browser.post_form("/_gatehouse/account/password", &fields).await.status(), 422);
    }
    assert_eq!(browser.post_form("/_gatehouse/account/password", &fields).await.status(), 429);
}

#[tokio::test]
async fn the_app_sees_a_new_name_and_address_at_once_even_with_the_session_cache_on() {
    let gatehouse =
        TestGatehouse::start_cached(Some(start_echo_upstream().await), std::time::Duration::from_secs(3600)).await;
    gatehouse.add_user("judy", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("judy", PASSWORD).await;
    assert_eq!(echoed_header(&browser.echo("/", &[]).await, "x-gatehouse-email"), ["judy@example.com"]);
    let csrf = browser.csrf_token("/_gatehouse/account").await;
    browser.post_form("/_gatehouse/account/name", &[("csrf_token", &csrf), ("name", "Judy Two")]).await;
    assert_eq!(echoed_header(&browser.echo("/", &[]).await, "x-gatehouse-name"), ["Judy Two"]);
    let fields = [("csrf_token", csrf.as_str()), ("email", "judy@new.example"), ("current_password", PASSWORD)];
    let verify_page = location(&browser.post_form("/_gatehouse/account/email", &fields).await);
    let code = gatehouse.outbox().next("judy@new.example", "confirm_new_email").await.code();
    let id = verify_page.split("id=").nth(1).unwrap().to_owned();
    browser.post_form("/_gatehouse/verify", &[("csrf_token", &csrf), ("id", &id), ("code", &code)]).await;
    assert_eq!(echoed_header(&browser.echo("/", &[]).await, "x-gatehouse-email"), ["judy@new.example"]);
}

#[tokio::test]
async fn an_email_change_completes_only_in_the_browser_of_the_account_that_asked() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("kate", PASSWORD, &[]).await;
    gatehouse.add_user("mallory", PASSWORD, &[]).await;
    // Mallory asks to move her account to Kate's second address; Kate gets the message.
    let mut mallory = gatehouse.signed_in("mallory", PASSWORD).await;
    let csrf = mallory.csrf_token("/_gatehouse/account").await;
    let fields = [("csrf_token", csrf.as_str()), ("email", "kate@second.example"), ("current_password", PASSWORD)];
    mallory.post_form("/_gatehouse/account/email", &fields).await;
    let mail = gatehouse.outbox().next("kate@second.example", "confirm_new_email").await;
    assert!(!mail.text.contains("mallory"), "nothing the requester chose is mailed to an unproven address");
    let token = mail.link_param("token");
    // Kate clicks, signed out or signed in as herself: nothing changes.
    for mut browser in [gatehouse.browser(), gatehouse.signed_in("kate", PASSWORD).await] {
        let csrf = browser.csrf_token(&mail.link_path()).await;
        let response = browser.post_form("/_gatehouse/verify", &[("csrf_token", &csrf), ("token", &token)]).await;
        assert_eq!(response.status(), 403);
    }
    let user = gatehouse.store().user_by_login("mallory").await.unwrap().unwrap();
    assert_eq!(user.email.unwrap().as_str(), "mallory@example.com");
}

#[tokio::test]
async fn a_password_change_voids_reset_links_already_mailed() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("leo", PASSWORD, &[]).await;
    forgot_password(&mut gatehouse.browser(), "leo").await;
    let link = gatehouse.outbox().next("leo@example.com", "reset_password").await.link_path();
    let mut browser = gatehouse.signed_in("leo", PASSWORD).await;
    let csrf = browser.csrf_token("/_gatehouse/account").await;
    let fields = [("csrf_token", csrf.as_str()), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD)];
    browser.post_form("/_gatehouse/account/password", &fields).await;
    assert_eq!(gatehouse.browser().get(&link).await.status(), 403);
}
