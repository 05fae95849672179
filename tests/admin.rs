//! The admin console through the real HTTP surface: who may open it, every action on a user (with its audit
//! entry naming the administrator), the rules about the last administrator and one's own role, the user
//! list's search, filters and paging, invitations, the audit page and the dashboard. The core flow runs on
//! SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::postgres::TestSchema;
use common::upstream::start_echo_upstream;
use common::websocket::{closes_within, open_stream};
use common::{Browser, Clock, TestGatehouse};
use gatehouse::domain::{AuditKind, NewUser, Role, Username};
use gatehouse::store::AuditFilter;

const PASSWORD: &str = "correct horse battery";

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Gatehouse with `root` (admin) and `alice` (analyst); returns the administrator's browser.
async fn console(gatehouse: &TestGatehouse) -> Browser {
    gatehouse.add_user("root", PASSWORD, &["admin"]).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    gatehouse.signed_in("root", PASSWORD).await
}

/// Posts a form of the page at `page` (its CSRF token included) to `action`.
async fn submit(browser: &mut Browser, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = browser.csrf_token(page).await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    browser.post_form(action, &all).await
}

/// The newest audit event of `kind` about `subject`.
async fn last_event(gatehouse: &TestGatehouse, kind: AuditKind, subject: &str) -> gatehouse::domain::AuditEvent {
    let filter =
        AuditFilter { kind: Some(kind), subject_or_actor: Some(subject.into()), limit: 1, ..Default::default() };
    let events = gatehouse.store().list_audit(&filter).await.unwrap();
    events.into_iter().next().unwrap_or_else(|| panic!("no {kind} event about {subject}"))
}

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
                let Some(schema) = TestSchema::for_test(concat!("admin_", stringify!($name))).await else { return };
                let gatehouse =
                    TestGatehouse::start_on(Some(schema.url()), Some(start_echo_upstream().await), "").await;
                $flow(&gatehouse).await;
            }
        }
    };
}

async fn an_admin_manages_a_user_from_creation_to_deletion(gatehouse: &TestGatehouse) {
    let mut admin = console(gatehouse).await;
    const USERS: &str = "/_gatehouse/admin/users";

    // Create, with a password.
    let fields = [
        ("username", "Bob"),
        ("email", "bob@example.com"),
        ("name", "Bob B"),
        ("roles", "viewer, staff"),
        ("password", "tulip granite orbit"),
    ];
    let created = submit(&mut admin, USERS, USERS, &fields).await;
    assert_eq!(created.status(), 303);
    assert_eq!(location(&created), "/_gatehouse/admin/users/bob?done=created");
    let page = admin.get("/_gatehouse/admin/users/bob?done=created").await.text().await.unwrap();
    assert!(page.contains("The user was created.") && page.contains("staff, viewer"), "{page}");
    let mut bob = gatehouse.signed_in("bob", "tulip granite orbit").await;
    let event = last_event(gatehouse, AuditKind::UserCreated, "bob").await;
    assert_eq!(event.actor.as_deref(), Some("root"));
    assert!(event.client_ip.is_some(), "the administrator's address is recorded");

    // Edit name and email; the app sees the new name on Bob's next request.
    let bob_page = "/_gatehouse/admin/users/bob";
    let saved = submit(
        &mut admin,
        bob_page,
        "/_gatehouse/admin/users/bob/profile",
        &[("name", "Robert"), ("email", "robert@example.com")],
    )
    .await;
    assert_eq!(location(&saved), "/_gatehouse/admin/users/bob?done=profile");
    let report = bob.echo("/", &[]).await;
    assert_eq!(common::echoed_header(&report, "x-gatehouse-name"), vec!["Robert"]);
    assert_eq!(common::echoed_header(&report, "x-gatehouse-email"), vec!["robert@example.com"]);
    assert_eq!(last_event(gatehouse, AuditKind::UserUpdated, "bob").await.detail.as_deref(), Some("name,email"));

    // Roles.
    let saved = submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/roles", &[("roles", "analyst")]).await;
    assert_eq!(location(&saved), "/_gatehouse/admin/users/bob?done=roles");
    assert_eq!(common::echoed_header(&bob.echo("/", &[]).await, "x-gatehouse-roles"), vec!["analyst"]);
    let event = last_event(gatehouse, AuditKind::RolesChanged, "bob").await;
    assert_eq!((event.actor.as_deref(), event.detail.as_deref()), (Some("root"), Some("analyst")));

    // Disable: Bob is out at once, open tabs included; enable lets him sign in again.
    let mut socket = open_stream(gatehouse, &bob).await;
    let disabled = submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/disable", &[]).await;
    assert_eq!(location(&disabled), "/_gatehouse/admin/users/bob?done=disabled");
    assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "the disabled user's tab stayed open");
    assert_eq!(bob.get("/").await.status(), 303);
    assert_eq!(gatehouse.browser().sign_in("bob", "tulip granite orbit", false).await.status(), 403);
    assert_eq!(last_event(gatehouse, AuditKind::UserDisabled, "bob").await.actor.as_deref(), Some("root"));
    submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/enable", &[]).await;
    let mut bob = gatehouse.signed_in("bob", "tulip granite orbit").await;
    assert_eq!(last_event(gatehouse, AuditKind::UserEnabled, "bob").await.actor.as_deref(), Some("root"));

    // Sessions: listed on the page, ended one at a time or all at once.
    let second = gatehouse.signed_in("bob", "tulip granite orbit").await;
    let page = admin.get(bob_page).await.text().await.unwrap();
    let session_ids: Vec<String> = page
        .split("name=\"session_id\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(session_ids.len(), 2, "{page}");
    let ended =
        submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/end-session", &[("session_id", &session_ids[0])])
            .await;
    assert_eq!(location(&ended), "/_gatehouse/admin/users/bob?done=session");
    let all = submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/end-sessions", &[]).await;
    assert_eq!(location(&all), "/_gatehouse/admin/users/bob?done=sessions");
    assert_eq!(bob.get("/").await.status(), 303);
    let mut second = second;
    assert_eq!(second.get("/").await.status(), 303);
    assert_eq!(last_event(gatehouse, AuditKind::SessionEnded, "bob").await.actor.as_deref(), Some("root"));

    // A reset link by mail.
    let sent = submit(&mut admin, bob_page, "/_gatehouse/admin/users/bob/reset-link", &[]).await;
    assert_eq!(location(&sent), "/_gatehouse/admin/users/bob?done=reset");
    let mail = gatehouse.outbox().next("robert@example.com", "reset_password").await;
    assert!(mail.link_path().starts_with("/_gatehouse/reset-password?token="));
    let event = last_event(gatehouse, AuditKind::PasswordResetRequested, "bob").await;
    assert_eq!((event.actor.as_deref(), event.detail.as_deref()), (Some("root"), Some("sent_by_admin")));

    // Delete, behind a confirmation page.
    let confirm = admin.get("/_gatehouse/admin/users/bob/delete").await.text().await.unwrap();
    assert!(confirm.contains("Delete bob?"), "{confirm}");
    let deleted =
        submit(&mut admin, "/_gatehouse/admin/users/bob/delete", "/_gatehouse/admin/users/bob/delete", &[]).await;
    assert_eq!(location(&deleted), "/_gatehouse/admin/users?done=deleted");
    assert!(gatehouse.store().user_by_login("bob").await.unwrap().is_none());
    assert_eq!(admin.get(bob_page).await.status(), 404);
    assert_eq!(last_event(gatehouse, AuditKind::UserDeleted, "bob").await.actor.as_deref(), Some("root"));
}
on_both!(admin_user_lifecycle, an_admin_manages_a_user_from_creation_to_deletion);

#[tokio::test]
async fn only_administrators_reach_the_console() {
    let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), "").await;
    let mut root = console(&gatehouse).await;
    let mut alice = gatehouse.signed_in("alice", PASSWORD).await;
    // A token minted for alice's browser, so CSRF is not what stops her.
    let token = alice.csrf_token("/_gatehouse/account").await;
    let pages = [
        "/_gatehouse/admin",
        "/_gatehouse/admin/users",
        "/_gatehouse/admin/users/root",
        "/_gatehouse/admin/users/root/delete",
        "/_gatehouse/admin/invites",
        "/_gatehouse/admin/audit",
    ];
    for page in pages {
        let response = alice.get(page).await;
        assert_eq!(response.status(), 403, "{page}");
        let html = response.text().await.unwrap();
        assert!(html.contains("needs the role &#x27;admin&#x27;") || html.contains("needs the role 'admin'"), "{html}");
        let anonymous = gatehouse.browser().get(page).await;
        assert_eq!(anonymous.status(), 303, "{page}");
        assert!(location(&anonymous).starts_with("/_gatehouse/login?rd=%2F_gatehouse%2Fadmin"), "{page}");
        assert_eq!(gatehouse.browser().api_get(page).await.status(), 401, "{page}");
    }
    let actions: [(&str, Vec<(&str, &str)>); 11] = [
        (
            "/_gatehouse/admin/users",
            vec![("username", "mallory"), ("password", "tulip granite orbit"), ("roles", "admin")],
        ),
        ("/_gatehouse/admin/users/root/profile", vec![("name", "pwned"), ("email", "x@example.com")]),
        ("/_gatehouse/admin/users/alice/roles", vec![("roles", "admin")]),
        ("/_gatehouse/admin/users/root/disable", vec![]),
        ("/_gatehouse/admin/users/root/enable", vec![]),
        ("/_gatehouse/admin/users/root/reset-link", vec![]),
        ("/_gatehouse/admin/users/root/end-session", vec![("session_id", "x")]),
        ("/_gatehouse/admin/users/root/end-sessions", vec![]),
        ("/_gatehouse/admin/users/root/delete", vec![]),
        ("/_gatehouse/admin/invites", vec![("email", "friend@example.com"), ("roles", "admin")]),
        ("/_gatehouse/admin/invites/revoke", vec![("invite_id", "x")]),
    ];
    for (action, fields) in actions {
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend(fields);
        assert_eq!(alice.post_form(action, &all).await.status(), 403, "{action}");
        // Without a session a browser is sent to sign in; nothing happens either way.
        assert_eq!(gatehouse.browser().post_form(action, &all).await.status(), 303, "{action}");
    }
    // Nothing changed, and root's own console still works.
    assert!(gatehouse.store().user_by_login("mallory").await.unwrap().is_none());
    let alice_now = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    assert_eq!(alice_now.roles, vec![Role::parse("analyst").unwrap()]);
    assert!(gatehouse.store().list_invites().await.unwrap().is_empty());
    assert_eq!(root.get("/_gatehouse/admin").await.status(), 200);
    // An action that does not exist is not found, whoever asks.
    let token = root.csrf_token("/_gatehouse/admin/users/alice").await;
    let unknown = root.post_form("/_gatehouse/admin/users/alice/promote", &[("csrf_token", &token)]).await;
    assert_eq!(unknown.status(), 404);
    // And an administrator's forms need the CSRF token too.
    let forged = root.post_form("/_gatehouse/admin/users/alice/disable", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    assert!(!gatehouse.store().user_by_login("alice").await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn the_last_administrator_and_ones_own_role_are_protected() {
    let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), "").await;
    let mut root = console(&gatehouse).await;
    let own = "/_gatehouse/admin/users/root";
    let refused = submit(&mut root, own, "/_gatehouse/admin/users/root/roles", &[("roles", "analyst")]).await;
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains("You cannot remove your own"));
    for action in ["disable", "delete"] {
        let refused = submit(&mut root, own, &format!("{own}/{action}"), &[]).await;
        assert_eq!(refused.status(), 409, "{action}");
    }
    // With a second administrator, root still cannot demote themselves, but the other one can be managed...
    gatehouse.add_user("second", PASSWORD, &["admin"]).await;
    let other = "/_gatehouse/admin/users/second";
    let demoted = submit(&mut root, other, &format!("{other}/roles"), &[("roles", "")]).await;
    assert_eq!(demoted.status(), 303);
    // ...and now root is the last one again: another administrator cannot remove them either.
    gatehouse
        .store()
        .set_roles(
            &gatehouse.store().user_by_login("second").await.unwrap().unwrap().id,
            &[Role::admin()],
            gatehouse.clock.now(),
        )
        .await
        .unwrap();
    let mut second = gatehouse.signed_in("second", PASSWORD).await;
    submit(&mut second, own, &format!("{own}/disable"), &[]).await;
    assert!(
        gatehouse.store().user_by_login("root").await.unwrap().unwrap().disabled,
        "two admins: one may disable the other"
    );
    assert_eq!(root.get(own).await.status(), 303, "root's session ended when root was disabled");
    let page = submit(&mut second, other, &format!("{other}/roles"), &[("roles", "")]).await;
    assert_eq!(page.status(), 409, "second is the last enabled administrator");
    assert!(page.text().await.unwrap().contains("You cannot remove your own"));
}

#[tokio::test]
async fn the_user_list_searches_filters_and_pages_in_the_database() {
    let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), "").await;
    let mut root = console(&gatehouse).await;
    let now = gatehouse.clock.now();
    for n in 0..120 {
        let role = if n % 3 == 0 { "staff" } else { "viewer" };
        let new = NewUser {
            disabled: n % 10 == 0,
            ..NewUser::by_admin(
                Username::parse(&format!("user{n:03}")).unwrap(),
                None,
                format!("Person {n} 50%_off"),
                vec![Role::parse(role).unwrap()],
            )
        };
        gatehouse.store().create_user(new, now).await.unwrap();
    }
    let page = root.get("/_gatehouse/admin/users").await.text().await.unwrap();
    assert!(page.contains("Showing 1–50 of 122."), "{page}");
    let third = root.get("/_gatehouse/admin/users?page=3").await.text().await.unwrap();
    assert!(third.contains("Showing 101–122 of 122.") && third.contains("user119"), "{third}");
    let staff = root.get("/_gatehouse/admin/users?role=staff&status=disabled").await.text().await.unwrap();
    // n divisible by 3 and by 10: 0, 30, 60, 90.
    assert!(staff.contains("of 4.") && staff.contains("user030") && !staff.contains("user010"), "{staff}");
    let search = root.get("/_gatehouse/admin/users?q=PERSON+11").await.text().await.unwrap();
    assert!(search.contains("of 11.") && search.contains("user110"), "case-insensitive, in the name: {search}");
    let literal = root.get("/_gatehouse/admin/users?q=%25_").await.text().await.unwrap();
    assert!(literal.contains("of 120."), "% and _ are matched literally: {literal}");
    let nothing = root.get("/_gatehouse/admin/users?q=%25x_").await.text().await.unwrap();
    assert!(nothing.contains("No users match."), "{nothing}");
    let pending = root.get("/_gatehouse/admin/users?status=pending").await.text().await.unwrap();
    assert!(pending.contains("No users match."));
}

#[tokio::test]
async fn invitations_are_sent_listed_and_revoked() {
    let gatehouse =
        TestGatehouse::start_on(None, Some(start_echo_upstream().await), "signup.mode = \"invite\"\n").await;
    let mut root = console(&gatehouse).await;
    const INVITES: &str = "/_gatehouse/admin/invites";
    let sent = submit(&mut root, INVITES, INVITES, &[("email", "friend@example.com"), ("roles", "analyst")]).await;
    assert_eq!(location(&sent), "/_gatehouse/admin/invites?done=sent");
    let mail = gatehouse.outbox().next("friend@example.com", "invite").await;
    let link = mail.link_path();
    let page = root.get(INVITES).await.text().await.unwrap();
    assert!(page.contains("friend@example.com") && page.contains("analyst") && page.contains("root"), "{page}");
    let id = gatehouse.store().list_invites().await.unwrap()[0].id.clone();
    let revoked = submit(&mut root, INVITES, "/_gatehouse/admin/invites/revoke", &[("invite_id", &id)]).await;
    assert_eq!(location(&revoked), "/_gatehouse/admin/invites?done=revoked");
    assert!(gatehouse.store().list_invites().await.unwrap().is_empty());
    let register = gatehouse.browser().get(&link).await.text().await.unwrap();
    assert!(!register.contains("friend@example.com"), "a revoked invitation no longer works: {register}");
    let event = last_event(&gatehouse, AuditKind::InviteRevoked, "friend@example.com").await;
    assert_eq!(event.actor.as_deref(), Some("root"));
    let bad = submit(&mut root, INVITES, INVITES, &[("email", "not an address")]).await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn the_audit_page_filters_and_pages_and_the_dashboard_draws_the_numbers() {
    let gatehouse = TestGatehouse::start_on(None, Some(start_echo_upstream().await), "").await;
    let mut root = console(&gatehouse).await;
    for _ in 0..3 {
        gatehouse.browser().sign_in("alice", "wrong password", false).await;
    }
    gatehouse.signed_in("alice", PASSWORD).await;

    let failed = root.get("/_gatehouse/admin/audit?kind=sign_in_failed&user=alice").await.text().await.unwrap();
    assert_eq!(failed.matches("<span class=\"kind failed\">sign_in_failed</span>").count(), 3, "{failed}");
    assert!(failed.contains("bad_password"), "the reason is shown: {failed}");
    // The client as the session lists name it, the full user agent as the tooltip.
    assert!(failed.contains(">Linux</div>"), "{failed}");
    // (minijinja escapes `/` in HTML.)
    assert!(failed.contains("title=\"Mozilla&#x2f;5.0 (X11; Linux x86_64) GatehouseTests&#x2f;1.0\""), "{failed}");
    let bad = root.get("/_gatehouse/admin/audit?since=yesterday-ish").await;
    assert_eq!(bad.status(), 422);

    // Paging: 100 a page, "older" continues below.
    let now = gatehouse.clock.now();
    for n in 0..150 {
        let event = gatehouse::domain::AuditEvent::new(now, AuditKind::SignOut).subject(format!("bulk{n}"));
        gatehouse.store().append_audit(&event).await.unwrap();
    }
    let first = root.get("/_gatehouse/admin/audit?kind=sign_out").await.text().await.unwrap();
    assert_eq!(first.matches("<span class=\"kind\">sign_out</span>").count(), 100);
    // Attribute values as the browser reads them (the template escapes '/' and '&').
    let decoded = first.replace("&#x2f;", "/").replace("&amp;", "&");
    let older =
        decoded.split("href=\"").find(|s| s.starts_with("/_gatehouse/admin/audit?kind=sign_out&before=")).unwrap();
    let older = older.split('"').next().unwrap().to_owned();
    let second = root.get(&older).await.text().await.unwrap();
    assert_eq!(second.matches("<span class=\"kind\">sign_out</span>").count(), 50, "{second}");

    let dashboard = root.get("/_gatehouse/admin").await.text().await.unwrap();
    assert!(dashboard.contains("<svg"), "{dashboard}");
    assert!(dashboard.contains("Sign-ins: <strong>2</strong>"), "root and alice signed in today: {dashboard}");
    assert!(dashboard.contains("Failed sign-ins: <strong>3</strong>"), "{dashboard}");
    assert!(dashboard.contains("New users: <strong>2</strong>"), "{dashboard}");
    assert!(dashboard.contains(": 3 failed sign-ins</title>"), "hover text carries the number: {dashboard}");
    // Counted in words that agree with the number: root is the one administrator.
    assert!(
        dashboard.contains("<span class=\"stat-value\">1</span><span class=\"stat-label\">administrator</span>"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("<span class=\"stat-value\">2</span><span class=\"stat-label\">users</span>"),
        "{dashboard}"
    );
}
