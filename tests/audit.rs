//! The audit log: every kind of event the issue names is recorded with its time, actor, subject, client IP
//! and user agent, driven through the real HTTP surface (self-service and admin console) and the CLI; events
//! cannot be edited; retention deletes old events; `gatehouse audit` exports with filters.

mod common;

use std::time::Duration;

use common::cli::Cli;
use common::upstream::start_echo_upstream;
use common::{Browser, Clock, TEST_USER_AGENT, TestGatehouse, extract_csrf};
use gatehouse::domain::{AuditEvent, AuditKind};
use gatehouse::store::AuditFilter;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "tulip granite orbit lantern";

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn submit(browser: &mut Browser, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = browser.csrf_token(page).await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    browser.post_form(action, &all).await
}

async fn code_for(browser: &mut Browser, verify_page: &str, code: &str) -> reqwest::Response {
    let id = verify_page.split("id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    submit(browser, verify_page, "/_gatehouse/verify", &[("id", &id), ("code", code)]).await
}

#[tokio::test]
async fn every_event_is_recorded_with_time_actor_subject_and_client() {
    let toml = "signup.mode = \"open\"\n";
    let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), toml).await;
    gatehouse.add_user("root", PASSWORD, &["admin"]).await;
    let started = gatehouse.clock.now();

    // Sign-in: a failure (with its reason), a success, a sign-out.
    assert_eq!(gatehouse.browser().sign_in("root", "not it", false).await.status(), 401);
    let mut root = gatehouse.signed_in("root", PASSWORD).await;

    // Registration and verification by code.
    let mut newcomer = gatehouse.browser();
    let html = newcomer.get("/_gatehouse/register").await.text().await.unwrap();
    let fields = [
        ("csrf_token", extract_csrf(&html)),
        ("username", "nina".into()),
        ("email", "nina@example.com".into()),
        ("name", "Nina".into()),
        ("password", PASSWORD.into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let verify_page = location(&newcomer.post_form("/_gatehouse/register", &fields).await);
    let code = gatehouse.outbox().next("nina@example.com", "verify_email").await.code();
    assert_eq!(code_for(&mut newcomer, &verify_page, &code).await.status(), 303);
    let mut nina = gatehouse.signed_in("nina", PASSWORD).await;

    // The account page: name, email (requested, then proven), password; the password change ends sessions.
    let account = "/_gatehouse/account";
    submit(&mut nina, account, "/_gatehouse/account/name", &[("name", "Nina N")]).await;
    let email_fields = [("email", "nina@new.example"), ("current_password", PASSWORD)];
    let verify_page = location(&submit(&mut nina, account, "/_gatehouse/account/email", &email_fields).await);
    let code = gatehouse.outbox().next("nina@new.example", "confirm_new_email").await.code();
    code_for(&mut nina, &verify_page, &code).await;
    let password_fields = [("current_password", PASSWORD), ("new_password", NEW_PASSWORD)];
    submit(&mut nina, account, "/_gatehouse/account/password", &password_fields).await;

    // Forgotten password: requested, then reset through the link.
    let mut forgetful = gatehouse.browser();
    submit(&mut forgetful, "/_gatehouse/forgot-password", "/_gatehouse/forgot-password", &[("login", "nina")]).await;
    let mail = gatehouse.outbox().next("nina@new.example", "reset_password").await;
    let link = mail.link_path();
    let token = mail.link_param("token");
    let reset =
        submit(&mut forgetful, &link, "/_gatehouse/reset-password", &[("token", &token), ("password", PASSWORD)]).await;
    assert_eq!(reset.status(), 303);

    // Admin actions, then a session ended on the account page and a sign-out.
    let users = "/_gatehouse/admin/users";
    submit(&mut root, users, users, &[("username", "otto"), ("password", NEW_PASSWORD), ("roles", "viewer")]).await;
    let otto = "/_gatehouse/admin/users/otto";
    submit(&mut root, otto, &format!("{otto}/roles"), &[("roles", "analyst")]).await;
    submit(&mut root, otto, &format!("{otto}/profile"), &[("name", "Otto"), ("email", "otto@example.com")]).await;
    submit(&mut root, otto, &format!("{otto}/disable"), &[]).await;
    submit(&mut root, otto, &format!("{otto}/enable"), &[]).await;
    submit(&mut root, otto, &format!("{otto}/delete"), &[]).await;
    let invites = "/_gatehouse/admin/invites";
    submit(&mut root, invites, invites, &[("email", "guest@example.com")]).await;
    let mut nina = gatehouse.signed_in("nina", PASSWORD).await;
    let other = gatehouse.signed_in("nina", PASSWORD).await;
    let other_id = gatehouse
        .store()
        .sessions_for_user(&gatehouse.store().user_by_login("nina").await.unwrap().unwrap().id)
        .await
        .unwrap();
    let other_id = other_id.iter().map(|s| s.id.0.clone()).find(|id| Some(id) != other.session_cookie()).unwrap();
    submit(&mut nina, account, "/_gatehouse/account/sessions/end", &[("session_id", &other_id)]).await;
    root.sign_out().await;

    // Each (kind, actor, subject, detail) expected, from the web: with an address and this client's agent.
    let expected: &[(AuditKind, Option<&str>, &str, Option<&str>)] = &[
        (AuditKind::SignInFailed, None, "root", Some("bad_password")),
        (AuditKind::SignIn, Some("root"), "root", None),
        (AuditKind::Registered, None, "nina", None),
        (AuditKind::EmailVerified, None, "nina", None),
        (AuditKind::ProfileChanged, Some("nina"), "nina", None),
        (AuditKind::EmailChangeRequested, Some("nina"), "nina", None),
        (AuditKind::EmailChanged, Some("nina"), "nina", None),
        (AuditKind::PasswordChanged, Some("nina"), "nina", None),
        (AuditKind::PasswordResetRequested, None, "nina", None),
        (AuditKind::PasswordReset, Some("nina"), "nina", None),
        (AuditKind::UserCreated, Some("root"), "otto", Some("viewer")),
        (AuditKind::RolesChanged, Some("root"), "otto", Some("analyst")),
        (AuditKind::UserUpdated, Some("root"), "otto", Some("name,email")),
        (AuditKind::UserDisabled, Some("root"), "otto", None),
        (AuditKind::UserEnabled, Some("root"), "otto", None),
        (AuditKind::UserDeleted, Some("root"), "otto", None),
        (AuditKind::InviteCreated, Some("root"), "guest@example.com", None),
        (AuditKind::SessionEnded, Some("nina"), "nina", Some("account_page")),
        (AuditKind::SignOut, Some("root"), "root", None),
    ];
    let events = gatehouse.store().list_audit(&AuditFilter { limit: 1000, ..Default::default() }).await.unwrap();
    for (kind, actor, subject, detail) in expected {
        let found = events.iter().find(|e| e.kind == *kind && e.subject.as_deref() == Some(*subject));
        let event = found.unwrap_or_else(|| panic!("no {kind} event about {subject}: {events:#?}"));
        if actor.is_some() {
            assert_eq!(event.actor.as_deref(), *actor, "{kind}");
        }
        if let Some(detail) = detail {
            assert!(event.detail.as_deref().unwrap_or("").starts_with(detail), "{kind}: {:?}", event.detail);
        }
        assert!(event.at >= started, "{kind}");
        assert_eq!(event.client_ip.as_deref(), Some("127.0.0.1"), "{kind}");
        assert_eq!(event.user_agent.as_deref(), Some(TEST_USER_AGENT), "{kind}");
    }
}

#[tokio::test]
async fn the_log_cannot_be_edited_and_retention_deletes_only_old_events() {
    let gatehouse = TestGatehouse::start_with(None, "audit.retention = \"30d\"\n").await;
    let store = gatehouse.store();
    let now = gatehouse.clock.now();
    store
        .append_audit(&AuditEvent::new(now - time::Duration::days(40), AuditKind::SignIn).subject("old"))
        .await
        .unwrap();
    store
        .append_audit(&AuditEvent::new(now - time::Duration::days(5), AuditKind::SignIn).subject("recent"))
        .await
        .unwrap();
    let deleted = store.delete_audit_before(now - time::Duration::days(30)).await.unwrap();
    assert_eq!(deleted, 1);
    let left = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.subject.as_deref().unwrap()).collect::<Vec<_>>(), vec!["recent"]);
    // The database refuses edits, whoever asks.
    let pool = sqlx::SqlitePool::connect(&gatehouse.db_url).await.unwrap();
    let edit = sqlx::query("UPDATE audit_log SET subject = 'someone else'").execute(&pool).await;
    assert!(edit.is_err(), "audit events must not be editable");
    assert_eq!(gatehouse.state.config.audit.retention, Some(Duration::from_secs(30 * 86400)));
}

#[test]
fn gatehouse_audit_exports_with_filters() {
    let cli = Cli::new();
    cli.ok(&["users", "add", "alice", "--role", "admin", "--password-stdin"], Some(PASSWORD));
    cli.ok(&["users", "add", "bob", "--password-stdin"], Some(PASSWORD));
    cli.ok(&["users", "roles", "bob", "--add", "analyst"], None);
    cli.ok(&["users", "disable", "bob"], None);

    let all = cli.json(&["audit", "--json"]);
    let kinds: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["user_created", "user_created", "roles_changed", "user_disabled"], "oldest first");
    assert_eq!(all[3]["actor"], "cli");
    assert!(all[3]["at"].as_str().unwrap().ends_with('Z') && all[3]["id"].as_i64().is_some());

    let bob = cli.json(&["audit", "--user", "bob", "--kind", "roles_changed", "--json"]);
    assert_eq!(bob.as_array().unwrap().len(), 1);
    assert_eq!(bob[0]["detail"], "analyst");
    assert_eq!(cli.json(&["audit", "--since", "2999-01-01", "--json"]), serde_json::json!([]));
    assert_eq!(cli.json(&["audit", "--since", "1h", "--json"]).as_array().unwrap().len(), 4);
    let table = cli.ok(&["audit", "--user", "bob"], None);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("user_disabled") && table.contains("actor=cli subject=bob"), "{table}");

    for (args, message) in
        [(vec!["audit", "--since", "last tuesday"], "--since"), (vec!["audit", "--kind", "nope"], "known kinds")]
    {
        let output = cli.run(&args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(message), "{args:?}");
    }
}
