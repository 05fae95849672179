//! One shared password instead of accounts (issue 15, item 7): the password-only sign-in page, the usual
//! sessions, throttling, audit and sign-out, the app told `shared`, an account page that lets nobody change
//! the password for the others or see their sessions, and the way back to accounts. The start-up side
//! (`[password] shared`, `--shared-password-file`, no setup link) is in tests/run_mode.rs and tests/cli.rs;
//! the browser side in tests/e2e/test_shared_password.py.

mod common;

use gatehouse::accounts::shared_password::{self, Installed};
use gatehouse::domain::AuditKind;
use gatehouse::import::Password;

use common::upstream::start_echo_upstream;
use common::{Browser, TestGatehouse, echoed_header};

const SHARED: &str = "one password for the team";

async fn with_shared_password() -> TestGatehouse {
    shared_password_with("").await
}

async fn shared_password_with(extra_toml: &str) -> TestGatehouse {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), extra_toml).await;
    let password = Password::Plain(SHARED.into());
    let now = gatehouse.state.clock.now();
    let installed =
        shared_password::install(&gatehouse.state.store, &gatehouse.state.passwords, &password, "config", now).await;
    assert_eq!(installed.unwrap(), Installed::Created);
    gatehouse
}

async fn sign_in_with(browser: &mut Browser, password: &str) -> reqwest::Response {
    let token = browser.csrf_token("/_gatehouse/login").await;
    browser
        .post_form("/_gatehouse/login", &[("password", password), ("csrf_token", &token), ("rd", "/report?x=1")])
        .await
}

#[tokio::test]
async fn the_sign_in_page_asks_only_for_the_password_and_the_app_sees_shared() {
    let gatehouse = with_shared_password().await;
    let mut browser = gatehouse.browser();
    let page = browser.get("/_gatehouse/login").await.text().await.unwrap();
    assert!(page.contains("Enter the password to continue to the app."), "{page}");
    assert!(!page.contains("name=\"username\""), "no username field: {page}");
    assert!(page.contains("Sign in with an account"), "{page}");

    let wrong = sign_in_with(&mut browser, "not it").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("Incorrect password."));

    let right = sign_in_with(&mut browser, SHARED).await;
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/report?x=1");
    let report = browser.echo("/report", &[]).await;
    assert_eq!(echoed_header(&report, "x-gatehouse-user"), vec!["shared"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-roles"), vec![""]);

    let events = gatehouse.store().list_audit(&Default::default()).await.unwrap();
    let kinds: Vec<AuditKind> = events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&AuditKind::SignIn) && kinds.contains(&AuditKind::SignInFailed), "{kinds:?}");

    browser.sign_out().await;
    assert_eq!(browser.get("/report").await.status(), 303, "signed out");
}

#[tokio::test]
async fn guessing_the_shared_password_is_throttled() {
    let gatehouse = with_shared_password().await;
    let mut browser = gatehouse.browser();
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        statuses.push(sign_in_with(&mut browser, &format!("guess {attempt}")).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn guessers_elsewhere_cannot_lock_everybody_out() {
    // Behind a trusted proxy, X-Forwarded-For tells clients apart. Fifty wrong guesses from ten addresses,
    // through both forms: an account-wide counter would now make every visitor wait.
    let gatehouse = shared_password_with("server.trusted_proxies = [\"127.0.0.1\"]\n").await;
    let origin = format!("http://{}", gatehouse.addr);
    let mut guesser = gatehouse.browser();
    let token = guesser.csrf_token("/_gatehouse/login").await;
    for address in 0..10 {
        let forwarded = format!("203.0.113.{address}");
        for guess in 0..5 {
            let password = format!("guess {address} {guess}");
            let mut fields = vec![("password", password.as_str()), ("csrf_token", token.as_str())];
            if guess % 2 == 0 {
                fields.push(("username", "shared"));
            }
            let extra = [("x-forwarded-for", forwarded.as_str()), ("origin", origin.as_str())];
            guesser.post_form_with("/_gatehouse/login", &fields, &extra).await;
        }
    }
    let mut visitor = gatehouse.browser();
    let token = visitor.csrf_token("/_gatehouse/login").await;
    let fields = [("password", SHARED), ("csrf_token", token.as_str())];
    let extra = [("x-forwarded-for", "198.51.100.7"), ("origin", origin.as_str())];
    let response = visitor.post_form_with("/_gatehouse/login", &fields, &extra).await;
    assert_eq!(response.status(), 303, "a visitor from their own address still gets in");
}

#[tokio::test]
async fn nobody_changes_the_password_for_the_others_or_sees_their_sessions() {
    let gatehouse = with_shared_password().await;
    let mut first = gatehouse.browser();
    sign_in_with(&mut first, SHARED).await;
    let mut second = gatehouse.browser();
    sign_in_with(&mut second, SHARED).await;

    let account = second.get("/_gatehouse/account").await.text().await.unwrap();
    assert!(account.contains("one shared password"), "{account}");
    assert!(!account.contains("Change password") && !account.contains("Change email"), "{account}");
    assert_eq!(account.matches("class=\"what\"").count(), 1, "only this browser's session: {account}");

    let token = second.csrf_token("/_gatehouse/account").await;
    let change = second
        .post_form(
            "/_gatehouse/account/password",
            &[("csrf_token", &token), ("current_password", SHARED), ("new_password", "mine alone now 42")],
        )
        .await;
    assert_eq!(change.status(), 403);
    let end_others = second.post_form("/_gatehouse/account/sessions/end-others", &[("csrf_token", &token)]).await;
    assert_eq!(end_others.status(), 403);
    assert_eq!(first.get("/").await.status(), 200, "the other visitor is still signed in");
    // The password still works for a third visitor.
    assert_eq!(sign_in_with(&mut gatehouse.browser(), SHARED).await.status(), 303);
}

#[tokio::test]
async fn installing_again_keeps_sessions_unless_the_password_changes_and_never_takes_over_a_users_account() {
    let gatehouse = with_shared_password().await;
    let (store, passwords, now) = (&gatehouse.state.store, &gatehouse.state.passwords, gatehouse.state.clock.now());
    let same = Password::Plain(SHARED.into());
    assert_eq!(shared_password::install(store, passwords, &same, "config", now).await.unwrap(), Installed::Unchanged);
    let hash = gatehouse::auth::password::hash_blocking("a hashed shared password").unwrap();
    let mut old_visitor = gatehouse.browser();
    sign_in_with(&mut old_visitor, SHARED).await;
    assert_eq!(old_visitor.get("/").await.status(), 200);
    let changed = Password::Hash(hash);
    assert_eq!(shared_password::install(store, passwords, &changed, "config", now).await.unwrap(), Installed::Changed);
    // Changing the password is how people are shut out: the sessions signed in with the old one end.
    assert_eq!(old_visitor.get("/").await.status(), 303, "signed out by the new password");
    let mut browser = gatehouse.browser();
    assert_eq!(sign_in_with(&mut browser, SHARED).await.status(), 401, "the old password no longer works");
    assert_eq!(sign_in_with(&mut browser, "a hashed shared password").await.status(), 303);

    // An administrator turned it off: a restart (installing again) leaves it off.
    let shared = shared_password::account(store).await.unwrap().unwrap();
    gatehouse.state.admin.set_disabled(&gatehouse::admin::Actor::cli(), &shared, true).await.unwrap();
    assert_eq!(shared_password::install(store, passwords, &changed, "config", now).await.unwrap(), Installed::Disabled);
    assert!(!shared_password::is_on(store).await.unwrap());

    // Somebody's own account called 'shared' is never turned into the shared one.
    let other = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    other.add_user("shared", "someone's own password", &[]).await;
    let taken = shared_password::install(&other.state.store, &other.state.passwords, &same, "config", now).await;
    assert!(matches!(taken, Err(shared_password::SharedPasswordError::NameTaken)), "{taken:?}");
}

#[tokio::test]
async fn switching_to_accounts_disables_the_shared_password_and_restores_the_full_form() {
    let gatehouse = with_shared_password().await;
    gatehouse.add_user("alice", "alice's own passphrase", &[]).await;
    // While the shared password is on, accounts sign in through the account form.
    let mut alice = gatehouse.browser();
    let form = alice.get("/_gatehouse/login?account=1").await.text().await.unwrap();
    assert!(form.contains("name=\"username\""), "{form}");
    assert_eq!(alice.sign_in("alice", "alice's own passphrase", false).await.status(), 303);

    let mut visitor = gatehouse.browser();
    sign_in_with(&mut visitor, SHARED).await;
    let shared = shared_password::account(&gatehouse.state.store).await.unwrap().unwrap();
    gatehouse.state.admin.set_disabled(&gatehouse::admin::Actor::cli(), &shared, true).await.unwrap();
    assert_eq!(visitor.get("/").await.status(), 303, "the shared sessions end");
    let page = gatehouse.browser().get("/_gatehouse/login").await.text().await.unwrap();
    assert!(page.contains("name=\"username\""), "the full form again: {page}");
    assert_eq!(sign_in_with(&mut gatehouse.browser(), SHARED).await.status(), 401);
}

#[test]
fn a_configured_shared_password_is_taken_exactly_and_must_be_long_enough() {
    assert_eq!(
        shared_password::parse(" spaced out secret ", 8).unwrap(),
        Password::Plain(" spaced out secret ".into())
    );
    let short = shared_password::parse("abc", 8).unwrap_err().to_string();
    assert!(short.contains("shorter than 8 characters"), "{short}");
    let hash = gatehouse::auth::password::hash_blocking("x").unwrap();
    assert_eq!(
        shared_password::parse(&format!("{hash}\n"), 8).unwrap(),
        Password::Hash(hash),
        "a hash is checked by no length"
    );
    assert!(shared_password::parse("$2b$12$broken", 8).is_err());
}
