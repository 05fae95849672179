//! Self-service accounts through the real HTTP surface, with codes and links read from the mail Gatehouse
//! wrote: registration in each sign-up mode, email verification by code and by link, resending, pending
//! accounts, invitations, and the answers that must not reveal which addresses have accounts. The flows
//! marked `on_both!` run on SQLite and on PostgreSQL.

mod common;

use common::postgres::TestSchema;
use common::upstream::start_echo_upstream;
use common::{Browser, Clock, TestGatehouse, echoed_header};
use gatehouse::auth::ClientInfo;
use gatehouse::domain::{AuditKind, Email, Role};
use gatehouse::store::AuditFilter;

const PASSWORD: &str = "correct horse battery";
const OPEN: &str = "signup.mode = \"open\"\n";

/// Runs a flow against SQLite and, when available, PostgreSQL (see `tests/common/postgres.rs`).
macro_rules! on_both {
    ($name:ident, $config:expr, $flow:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let gatehouse =
                    with_admin(TestGatehouse::start_on(None, Some(start_echo_upstream().await), $config).await).await;
                $flow(&gatehouse).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(schema) = TestSchema::for_test(concat!(stringify!($name), "::postgres")).await else { return };
                let gatehouse = with_admin(
                    TestGatehouse::start_on(Some(schema.url()), Some(start_echo_upstream().await), $config).await,
                )
                .await;
                $flow(&gatehouse).await;
            }
        }
    };
}

/// Registration opens once the first administrator exists (see `registration_waits_for_the_first_administrator`).
async fn with_admin(gatehouse: TestGatehouse) -> TestGatehouse {
    gatehouse.add_user("admin", PASSWORD, &["admin"]).await;
    gatehouse
}

async fn register(browser: &mut Browser, username: &str, email: &str, password: &str) -> reqwest::Response {
    register_with(browser, "/_gatehouse/register", username, email, password).await
}

async fn register_with(
    browser: &mut Browser,
    page: &str,
    username: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let html = browser.get(page).await.text().await.unwrap();
    let token = common::extract_csrf(&html);
    let invite = page.split("invite=").nth(1).unwrap_or("");
    let fields = [
        ("csrf_token", token.as_str()),
        ("username", username),
        ("email", email),
        ("name", "New Person"),
        ("password", password),
        ("invite", invite),
    ];
    browser.post_form("/_gatehouse/register", &fields).await
}

async fn submit_code(browser: &mut Browser, verify_page: &str, code: &str) -> reqwest::Response {
    let token = browser.csrf_token(verify_page).await;
    let id = verify_page.split("id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    browser.post_form("/_gatehouse/verify", &[("csrf_token", &token), ("id", &id), ("code", code)]).await
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn audit_kinds(gatehouse: &TestGatehouse, subject: &str) -> Vec<AuditKind> {
    let filter = AuditFilter { subject_or_actor: Some(subject.to_owned()), limit: 100, ..Default::default() };
    gatehouse.store().list_audit(&filter).await.unwrap().into_iter().map(|e| e.kind).collect()
}

async fn registration_is_verified_by_the_emailed_code_and_signs_in(gatehouse: &TestGatehouse) {
    let mut browser = gatehouse.browser();
    let page = browser.get("/_gatehouse/register").await.text().await.unwrap();
    for needle in
        [r#"autocomplete="new-password""#, r#"autocomplete="email""#, "At least 8 characters", r#"minlength="8""#]
    {
        assert!(page.contains(needle), "registration page lacks {needle}");
    }
    let response = register(&mut browser, "newbie", "Newbie@Example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let verify_page = location(&response);
    assert!(verify_page.starts_with("/_gatehouse/verify?id="), "{verify_page}");

    // Pending: the account exists but cannot be used yet.
    let user = gatehouse.store().user_by_login("newbie").await.unwrap().unwrap();
    assert!(user.is_pending() && !user.email_verified);
    let html = browser.get(&verify_page).await.text().await.unwrap();
    assert!(html.contains(r#"autocomplete="one-time-code""#), "{html}");
    assert!(!html.contains("newbie@example.com"), "the page does not show the address (decoys could not)");

    let mail = gatehouse.outbox().next("newbie@example.com", "verify_email").await;
    assert!(mail.subject.contains(&mail.code()), "{}", mail.subject);
    let response = submit_code(&mut browser, &verify_page, &mail.code()).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    assert_eq!(location(&response), "/");
    let report = browser.echo("/", &[]).await;
    assert_eq!(echoed_header(&report, "x-gatehouse-user"), ["newbie"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-name"), ["New Person"]);

    let user = gatehouse.store().user_by_login("newbie").await.unwrap().unwrap();
    assert!(!user.is_pending() && user.email_verified);
    let kinds = audit_kinds(gatehouse, "newbie").await;
    assert!(kinds.contains(&AuditKind::Registered) && kinds.contains(&AuditKind::EmailVerified), "{kinds:?}");
    // The code was used up: typed again it signs nobody in, it only says the address is confirmed.
    let mut late = gatehouse.browser();
    let response = submit_code(&mut late, &verify_page, &mail.code()).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/_gatehouse/login?verified=1");
    assert!(late.session_cookie().is_none(), "a used code starts no session");
}
on_both!(code_verification, OPEN, registration_is_verified_by_the_emailed_code_and_signs_in);

async fn a_pending_account_cannot_sign_in_and_is_sent_to_verification(gatehouse: &TestGatehouse) {
    let mut browser = gatehouse.browser();
    register(&mut browser, "pending", "pending@example.com", PASSWORD).await;
    let mail = gatehouse.outbox().next("pending@example.com", "verify_email").await;

    let mut other = gatehouse.browser();
    let response = other.sign_in("pending", "wrong password here", false).await;
    assert_eq!(response.status(), 401, "a wrong password says nothing about the account's state");
    let response = other.sign_in("pending", PASSWORD, false).await;
    assert_eq!(response.status(), 303);
    let verify_page = location(&response);
    assert!(verify_page.starts_with("/_gatehouse/verify?id="), "{verify_page}");
    assert!(other.session_cookie().is_none(), "no session before verification");
    // The open challenge is reused: the code already mailed still works.
    let response = submit_code(&mut other, &verify_page, &mail.code()).await;
    assert_eq!(response.status(), 303);
    assert!(other.session_cookie().is_some());
}
on_both!(pending_sign_in, OPEN, a_pending_account_cannot_sign_in_and_is_sent_to_verification);

async fn a_taken_address_gets_the_same_answer_and_its_owner_a_notice(gatehouse: &TestGatehouse) {
    gatehouse.add_user("owner", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    let taken = register(&mut browser, "intruder", "owner@example.com", PASSWORD).await;
    let fresh = register(&mut gatehouse.browser(), "someone", "someone@example.com", PASSWORD).await;
    assert_eq!(taken.status(), fresh.status());
    let (taken_to, fresh_to) = (location(&taken), location(&fresh));
    assert_eq!(taken_to.len(), fresh_to.len());
    assert!(taken_to.starts_with("/_gatehouse/verify?id="));
    // The decoy behaves like a real challenge: the same page, the same answer to a wrong code, the same limit
    // on new codes.
    let mut fresh_browser = gatehouse.browser();
    let page_of = |html: String| {
        html.lines().filter(|l| !l.contains("csrf_token") && !l.contains("name=\"id\"")).collect::<Vec<_>>().join("\n")
    };
    let taken_page = page_of(browser.get(&taken_to).await.text().await.unwrap());
    let fresh_page = page_of(fresh_browser.get(&fresh_to).await.text().await.unwrap());
    assert_eq!(taken_page, fresh_page);
    let taken_wrong = submit_code(&mut browser, &taken_to, "123456").await;
    let fresh_wrong = submit_code(&mut fresh_browser, &fresh_to, "123456").await;
    assert_eq!(taken_wrong.status(), fresh_wrong.status());
    assert_eq!(page_of(taken_wrong.text().await.unwrap()), page_of(fresh_wrong.text().await.unwrap()));
    for (browser, page) in [(&mut browser, &taken_to), (&mut fresh_browser, &fresh_to)] {
        let token = browser.csrf_token(page).await;
        let id = page.split("id=").nth(1).unwrap().to_owned();
        let first = browser.post_form("/_gatehouse/verify/resend", &[("csrf_token", &token), ("id", &id)]).await;
        assert_eq!(first.status(), 303);
        let next = location(&first);
        let next_id = next.split("id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
        let second = browser.post_form("/_gatehouse/verify/resend", &[("csrf_token", &token), ("id", &next_id)]).await;
        assert_eq!(second.status(), 429, "a second new code within a minute is refused, decoy or not");
    }

    let notice = gatehouse.outbox().next("owner@example.com", "already_registered").await;
    assert!(notice.text.contains("owner"), "{}", notice.text);
    assert!(gatehouse.store().user_by_login("intruder").await.unwrap().is_none());
    // A taken username is reported whatever the address, so that answer reveals nothing about addresses.
    let with_taken_address = register(&mut gatehouse.browser(), "owner", "owner@example.com", PASSWORD).await;
    let with_new_address = register(&mut gatehouse.browser(), "owner", "brand-new@example.com", PASSWORD).await;
    assert_eq!((with_taken_address.status().as_u16(), with_new_address.status().as_u16()), (422, 422));
    let kinds = audit_kinds(gatehouse, "owner").await;
    assert!(kinds.contains(&AuditKind::RegistrationRefused), "{kinds:?}");
}
on_both!(taken_address, OPEN, a_taken_address_gets_the_same_answer_and_its_owner_a_notice);

async fn an_invitation_fixes_the_address_grants_its_roles_and_works_once(gatehouse: &TestGatehouse) {
    let email = Email::parse("invitee@example.com").unwrap();
    let roles = vec![Role::parse("analyst").unwrap()];
    let link = gatehouse.state.accounts.invite(email, roles, "admin", &ClientInfo::default(), true).await.unwrap();
    let mail = gatehouse.outbox().next("invitee@example.com", "invite").await;
    let page = mail.link_path();
    assert!(link.ends_with(&page), "{link} vs {page}");

    let mut browser = gatehouse.browser();
    let html = browser.get(&page).await.text().await.unwrap();
    assert!(html.contains(r#"value="invitee@example.com" readonly"#), "{html}");
    // Whatever address is typed, the invited one is registered.
    let response = register_with(&mut browser, &page, "invitee", "attacker@evil.example", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let code = gatehouse.outbox().next("invitee@example.com", "verify_email").await.code();
    gatehouse.outbox().expect_none("attacker@evil.example").await;
    let response = submit_code(&mut browser, &location(&response), &code).await;
    assert_eq!(response.status(), 303);
    let user = gatehouse.store().user_by_login("invitee").await.unwrap().unwrap();
    assert_eq!(user.email.as_ref().unwrap().as_str(), "invitee@example.com");
    assert!(user.has_role("analyst"));

    let again = browser.get(&page).await;
    assert_eq!(again.status(), 403, "an invitation works once");
}
on_both!(invitation, "signup.mode = \"invite\"\n", an_invitation_fixes_the_address_grants_its_roles_and_works_once);

#[tokio::test]
async fn the_emailed_link_verifies_after_a_click_and_only_once() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    let mut browser = gatehouse.browser();
    let verify_page = location(&register(&mut browser, "linker", "linker@example.com", PASSWORD).await);
    let mail = gatehouse.outbox().next("linker@example.com", "verify_email").await;
    let link = mail.link_path();
    assert!(mail.html.contains("Confirm my address") && mail.html.contains("href="), "{}", mail.html);

    // Opening the link (as mail scanners do) changes nothing; the button does.
    let mut other_device = gatehouse.browser();
    let html = other_device.get(&link).await.text().await.unwrap();
    assert!(html.contains("Confirm my email address"));
    assert!(gatehouse.store().user_by_login("linker").await.unwrap().unwrap().is_pending());
    let csrf = common::extract_csrf(&html);
    let token = mail.link_param("token");
    let response = other_device.post_form("/_gatehouse/verify", &[("csrf_token", &csrf), ("token", &token)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/_gatehouse/login?verified=1");
    // The clicking browser is not signed in: it may not be the one that registered.
    assert!(other_device.session_cookie().is_none());
    assert!(!gatehouse.store().user_by_login("linker").await.unwrap().unwrap().is_pending());
    assert_eq!(other_device.sign_in("linker", PASSWORD, false).await.status(), 303);
    let again = other_device.post_form("/_gatehouse/verify", &[("csrf_token", &csrf), ("token", &token)]).await;
    assert_eq!(again.status(), 403);

    // The first tab still shows the code form: the code typed there now says "confirmed, go on", not "wrong".
    let late = submit_code(&mut browser, &verify_page, &mail.code()).await;
    assert_eq!(late.status(), 303, "{}", late.text().await.unwrap());
    assert_eq!(location(&late), "/_gatehouse/login?verified=1");
    // A made-up id is still just a wrong code.
    let made_up = submit_code(&mut browser, "/_gatehouse/verify?id=0123456789abcdef0123456789abcdef", "123456").await;
    assert_eq!(made_up.status(), 422);
}

#[tokio::test]
async fn codes_allow_five_guesses_and_resending_is_limited() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    let mut browser = gatehouse.browser();
    let verify_page = location(&register(&mut browser, "guesser", "guesser@example.com", PASSWORD).await);
    let code = gatehouse.outbox().next("guesser@example.com", "verify_email").await.code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let response = submit_code(&mut browser, &verify_page, wrong).await;
        assert_eq!(response.status(), 422);
        assert!(response.text().await.unwrap().contains("That code is not right"));
    }
    let response = submit_code(&mut browser, &verify_page, &code).await;
    assert_eq!(response.status(), 422, "after five wrong guesses even the right code is refused");

    // A new code replaces the old challenge.
    let token = browser.csrf_token(&verify_page).await;
    let id = verify_page.split("id=").nth(1).unwrap().to_owned();
    let response = browser.post_form("/_gatehouse/verify/resend", &[("csrf_token", &token), ("id", &id)]).await;
    assert_eq!(response.status(), 303);
    let new_page = location(&response);
    assert!(new_page.contains("resent=1"));
    let new_code = gatehouse.outbox().next("guesser@example.com", "verify_email").await.code();
    // Asking again within a minute is refused.
    let new_id = new_page.split("id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let response = browser.post_form("/_gatehouse/verify/resend", &[("csrf_token", &token), ("id", &new_id)]).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let response = submit_code(&mut browser, &new_page, &new_code).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn codes_expire_and_pending_registrations_are_swept() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    let mut browser = gatehouse.browser();
    let verify_page = location(&register(&mut browser, "slowpoke", "slowpoke@example.com", PASSWORD).await);
    let code = gatehouse.outbox().next("slowpoke@example.com", "verify_email").await.code();
    gatehouse.clock.advance(time::Duration::minutes(31));
    assert_eq!(submit_code(&mut browser, &verify_page, &code).await.status(), 422);

    gatehouse.clock.advance(time::Duration::hours(24));
    let swept = gatehouse.store().delete_expired_account_records(gatehouse.clock.now()).await.unwrap();
    assert!(swept >= 2, "the challenge and the pending account are gone ({swept})");
    assert!(gatehouse.store().user_by_login("slowpoke").await.unwrap().is_none());
    // The username and address are free again.
    let response = register(&mut gatehouse.browser(), "slowpoke", "slowpoke@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn without_verification_an_open_registration_signs_in_at_once() {
    let config = "signup.mode = \"open\"\nsignup.require_email_verification = false\n";
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), config).await).await;
    let mut browser = gatehouse.browser();
    let response = register(&mut browser, "quick", "quick@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    assert_eq!(echoed_header(&browser.echo("/", &[]).await, "x-gatehouse-user"), ["quick"]);
    gatehouse.outbox().expect_none("quick@example.com").await;
}

#[tokio::test]
async fn closed_mode_has_no_registration() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    assert_eq!(browser.get("/_gatehouse/register").await.status(), 403);
    let login = browser.get("/_gatehouse/login").await.text().await.unwrap();
    assert!(!login.contains("/_gatehouse/register"), "no registration link in closed mode");
    assert!(login.contains("/_gatehouse/forgot-password"));
    let csrf = browser.csrf_token("/_gatehouse/login").await;
    let fields = [("csrf_token", csrf.as_str()), ("username", "x"), ("email", "x@example.com"), ("password", PASSWORD)];
    assert_eq!(browser.post_form("/_gatehouse/register", &fields).await.status(), 403);
    assert_eq!(gatehouse.store().count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn invite_mode_accepts_pre_authorised_addresses_only() {
    let config = "signup.mode = \"invite\"\nsignup.invited_emails = [\"listed@example.com\"]\n";
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), config).await).await;
    let response = register(&mut gatehouse.browser(), "stranger", "stranger@example.com", PASSWORD).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("needs an invitation"));
    let response = register(&mut gatehouse.browser(), "listed", "listed@example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
    gatehouse.outbox().next("listed@example.com", "verify_email").await;
}

#[tokio::test]
async fn open_mode_can_be_limited_to_domains() {
    let config = "signup.mode = \"open\"\nsignup.allowed_email_domains = [\"corp.example\"]\n";
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), config).await).await;
    let response = register(&mut gatehouse.browser(), "outsider", "outsider@gmail.example", PASSWORD).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("corp.example"));
    let response = register(&mut gatehouse.browser(), "insider", "insider@corp.example", PASSWORD).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn registration_refuses_weak_passwords_taken_usernames_and_forged_forms() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    gatehouse.add_user("taken", PASSWORD, &[]).await;
    let response = register(&mut gatehouse.browser(), "weakling", "weak@example.com", "password1").await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("too easy to guess"));
    let response = register(&mut gatehouse.browser(), "taken", "new@example.com", PASSWORD).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("username is taken"));
    let mut browser = gatehouse.browser();
    let fields = [("csrf_token", "forged"), ("username", "x"), ("email", "x@example.com"), ("password", PASSWORD)];
    assert_eq!(browser.post_form("/_gatehouse/register", &fields).await.status(), 403);
}

#[tokio::test]
async fn registrations_are_limited_per_client() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    for i in 0..10 {
        let response =
            register(&mut gatehouse.browser(), &format!("user{i}"), &format!("u{i}@example.com"), PASSWORD).await;
        assert_eq!(response.status(), 303, "registration {i}");
    }
    let response = register(&mut gatehouse.browser(), "user10", "u10@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn an_unproven_registration_does_not_hold_its_address() {
    let gatehouse = with_admin(TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await).await;
    register(&mut gatehouse.browser(), "squatter", "victim@example.com", PASSWORD).await;
    let mut victim = gatehouse.browser();
    let verify_page = location(&register(&mut victim, "victim", "victim@example.com", PASSWORD).await);
    assert!(gatehouse.store().user_by_login("squatter").await.unwrap().is_none(), "the unproven one is replaced");
    // Two messages reach the address; only the code of the victim's registration works (the squatter's
    // challenge went with its account).
    let codes = [
        gatehouse.outbox().next("victim@example.com", "verify_email").await.code(),
        gatehouse.outbox().next("victim@example.com", "verify_email").await.code(),
    ];
    let mut statuses = Vec::new();
    for code in &codes {
        statuses.push(submit_code(&mut victim, &verify_page, code).await.status().as_u16());
    }
    assert!(statuses.contains(&303), "{statuses:?}");
    assert!(!gatehouse.store().user_by_login("victim").await.unwrap().unwrap().is_pending());
}

#[tokio::test]
async fn registration_waits_for_the_first_administrator() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), OPEN).await;
    let response = register(&mut gatehouse.browser(), "early", "early@example.com", PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("not set up yet"));
    assert_eq!(gatehouse.store().count_users().await.unwrap(), 0, "the setup link still works");
}
