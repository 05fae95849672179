//! One behaviour suite for every `Store` implementation. Each test receives a fresh, empty store; the
//! `backends!` block at the bottom runs the whole suite once per backend: SQLite always, PostgreSQL when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in a schema of its own), so no backend can drift from the
//! others.

mod common;

use gatehouse::domain::oidc::{GrantToken, GrantTokenKind};
use gatehouse::domain::{
    AuditEvent, AuditKind, ChallengePurpose, Email, EmailChallenge, Invite, NewSession, NewUser, Role, SessionId,
    SessionToken, TokenHash, UserId, Username,
};
use gatehouse::store::{AuditFilter, OneTimeToken, SharedStore, StoreError};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn new_user(name: &str, roles: &[&str]) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        email: Some(Email::parse(&format!("{name}@example.com")).unwrap()),
        display_name: format!("User {name}"),
        roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
        password_hash: Some("$argon2id$placeholder".into()),
        email_verified: true,
        pending_until: None,
        disabled: false,
    }
}

fn new_session(user: &UserId, at: OffsetDateTime, idle: Duration, lifetime: Duration) -> (SessionToken, NewSession) {
    let token = SessionToken::generate();
    let session = NewSession {
        id: SessionId::generate(),
        token_hash: token.hash(),
        user_id: user.clone(),
        created_at: at,
        expires_at: at + lifetime,
        idle_timeout: idle,
        remember_me: false,
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("test agent".into()),
    };
    (token, session)
}

async fn users_round_trip(store: SharedStore) {
    let created = store.create_user(new_user("alice", &["viewer", "admin", "viewer"]), t0()).await.unwrap();
    assert_eq!(created.username.as_str(), "alice");
    assert_eq!(created.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), vec!["admin", "viewer"]);
    assert_eq!(created.created_at, t0());
    assert_eq!(created.login_count, 0);
    assert!(!created.disabled);

    let by_id = store.user_by_id(&created.id).await.unwrap().unwrap();
    assert_eq!(by_id, created);
    assert_eq!(store.user_by_login("ALICE").await.unwrap().unwrap().id, created.id);
    assert_eq!(store.user_by_login("Alice@Example.com").await.unwrap().unwrap().id, created.id);
    assert!(store.user_by_login("nobody").await.unwrap().is_none());
    assert!(store.user_by_id(&UserId("missing".into())).await.unwrap().is_none());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn usernames_and_emails_are_unique(store: SharedStore) {
    store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    let mut same_name = new_user("alice", &[]);
    same_name.email = Some(Email::parse("another@example.com").unwrap());
    let same_name = store.create_user(same_name, t0()).await.unwrap_err();
    assert!(matches!(same_name, StoreError::Conflict("username")), "{same_name:?}");
    let mut other = new_user("alice2", &[]);
    other.email = Some(Email::parse("alice@example.com").unwrap());
    let same_email = store.create_user(other, t0()).await.unwrap_err();
    assert!(matches!(same_email, StoreError::Conflict("email")), "{same_email:?}");
    // A user without email is fine, twice.
    for name in ["carol", "dave"] {
        let mut user = new_user(name, &[]);
        user.email = None;
        store.create_user(user, t0()).await.unwrap();
    }
    assert_eq!(store.count_users().await.unwrap(), 3);
}

async fn a_login_that_is_one_users_name_and_anothers_email_prefers_the_username(store: SharedStore) {
    let mut tricky = new_user("bob", &[]);
    tricky.email = Some(Email::parse("carol@x.example").unwrap());
    store.create_user(tricky, t0()).await.unwrap();
    let mut weird = new_user("carol", &[]);
    weird.email = Some(Email::parse("carol@y.example").unwrap());
    let carol = store.create_user(weird, t0()).await.unwrap();
    assert_eq!(store.user_by_login("carol").await.unwrap().unwrap().id, carol.id);
}

async fn users_are_updated(store: SharedStore) {
    let user = store.create_user(new_user("alice", &["viewer"]), t0()).await.unwrap();
    let later = t0() + Duration::hours(1);
    store.set_password_hash(&user.id, "$argon2id$new", later).await.unwrap();
    store.set_roles(&user.id, &[Role::parse("editor").unwrap(), Role::parse("admin").unwrap()], later).await.unwrap();
    store.set_disabled(&user.id, true, later).await.unwrap();
    store.record_login(&user.id, later).await.unwrap();
    store.record_login(&user.id, later + Duration::minutes(1)).await.unwrap();
    let updated = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(updated.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(updated.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), vec!["admin", "editor"]);
    assert!(updated.disabled);
    assert_eq!(updated.login_count, 2);
    assert_eq!(updated.last_login_at, Some(later + Duration::minutes(1)));
    assert_eq!(updated.updated_at, later);

    let missing = UserId("missing".into());
    assert!(matches!(store.set_password_hash(&missing, "x", later).await, Err(StoreError::NotFound)));
    assert!(matches!(store.set_roles(&missing, &[], later).await, Err(StoreError::NotFound)));
    assert!(matches!(store.set_disabled(&missing, true, later).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_user(&missing).await, Err(StoreError::NotFound)));
}

async fn users_are_listed_in_username_order(store: SharedStore) {
    for name in ["zoe", "adam", "mia"] {
        store.create_user(new_user(name, &["r"]), t0()).await.unwrap();
    }
    let names: Vec<_> = store.list_users().await.unwrap().into_iter().map(|u| u.username.to_string()).collect();
    assert_eq!(names, vec!["adam", "mia", "zoe"]);
}

async fn deleting_a_user_deletes_their_sessions(store: SharedStore) {
    let user = store.create_user(new_user("alice", &["a"]), t0()).await.unwrap();
    let (token, session) = new_session(&user.id, t0(), Duration::hours(1), Duration::days(1));
    store.create_session(session).await.unwrap();
    store.delete_user(&user.id).await.unwrap();
    assert!(store.session_by_token_hash(&token.hash()).await.unwrap().is_none());
    assert!(store.user_by_id(&user.id).await.unwrap().is_none());
}

async fn sessions_round_trip(store: SharedStore) {
    let user = store.create_user(new_user("alice", &["a"]), t0()).await.unwrap();
    let (token, new) = new_session(&user.id, t0(), Duration::hours(12), Duration::days(7));
    store.create_session(new.clone()).await.unwrap();
    let (session, owner) = store.session_by_token_hash(&token.hash()).await.unwrap().unwrap();
    assert_eq!(owner.id, user.id);
    assert_eq!(session.id, new.id);
    assert_eq!(session.created_at, t0());
    assert_eq!(session.last_seen_at, t0());
    assert_eq!(session.expires_at, t0() + Duration::days(7));
    assert_eq!(session.idle_timeout, Duration::hours(12));
    assert_eq!(session.client_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(session.user_agent.as_deref(), Some("test agent"));
    assert!(store.session_by_token_hash(&TokenHash::of("other")).await.unwrap().is_none());

    store.touch_session(&session.id, t0() + Duration::minutes(5)).await.unwrap();
    // Touching never moves last-seen backwards.
    store.touch_session(&session.id, t0() + Duration::minutes(1)).await.unwrap();
    let (touched, _) = store.session_by_token_hash(&token.hash()).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, t0() + Duration::minutes(5));

    assert!(store.delete_session(&session.id).await.unwrap());
    assert!(!store.delete_session(&session.id).await.unwrap());
    assert!(store.session_by_token_hash(&token.hash()).await.unwrap().is_none());
}

async fn sessions_are_listed_counted_and_swept(store: SharedStore) {
    let alice = store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    let bob = store.create_user(new_user("bob", &[]), t0()).await.unwrap();
    let (_, short) = new_session(&alice.id, t0(), Duration::hours(1), Duration::days(7));
    let (_, long) = new_session(&alice.id, t0(), Duration::days(30), Duration::days(30));
    let (_, bobs) = new_session(&bob.id, t0(), Duration::hours(1), Duration::hours(2));
    for s in [short.clone(), long.clone(), bobs.clone()] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.sessions_for_user(&alice.id).await.unwrap().len(), 2);
    assert_eq!(store.count_active_sessions(t0()).await.unwrap(), 3);
    // After 90 minutes the idle timeouts of `short` and `bobs` have passed.
    let later = t0() + Duration::minutes(90);
    assert_eq!(store.count_active_sessions(later).await.unwrap(), 1);
    assert_eq!(store.delete_expired_sessions(later).await.unwrap(), 2);
    let left = store.sessions_for_user(&alice.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, long.id);

    let (_, another) = new_session(&alice.id, t0(), Duration::days(1), Duration::days(1));
    store.create_session(another.clone()).await.unwrap();
    let mut ended = store.delete_user_sessions(&alice.id).await.unwrap();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![long.id, another.id];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ended, expected);
    assert!(store.sessions_for_user(&alice.id).await.unwrap().is_empty());
}

async fn audit_is_appended_and_filtered_newest_first(store: SharedStore) {
    let events = [
        AuditEvent::new(t0(), AuditKind::SignIn)
            .actor("alice")
            .subject("alice")
            .client(Some("192.0.2.1".into()), Some("ua".into())),
        AuditEvent::new(t0() + Duration::minutes(1), AuditKind::SignInFailed).subject("bob").detail("bad_password"),
        AuditEvent::new(t0() + Duration::minutes(2), AuditKind::UserDisabled).actor("alice").subject("bob"),
    ];
    for event in &events {
        store.append_audit(event).await.unwrap();
    }
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], events[2]);
    assert_eq!(all[2], events[0]);
    let about_bob =
        store.list_audit(&AuditFilter { subject_or_actor: Some("bob".into()), ..Default::default() }).await.unwrap();
    assert_eq!(about_bob.len(), 2);
    let by_alice =
        store.list_audit(&AuditFilter { subject_or_actor: Some("alice".into()), ..Default::default() }).await.unwrap();
    assert_eq!(by_alice.len(), 2);
    let recent = store
        .list_audit(&AuditFilter { since: Some(t0() + Duration::minutes(1)), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(recent.len(), 2);
    let failures =
        store.list_audit(&AuditFilter { kind: Some(AuditKind::SignInFailed), ..Default::default() }).await.unwrap();
    assert_eq!(failures, vec![events[1].clone()]);
    let limited = store.list_audit(&AuditFilter { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(limited.len(), 1);
}

async fn throttle_counters_count_reset_and_clear(store: SharedStore) {
    assert!(store.throttle_state("k").await.unwrap().is_none());
    let window = Duration::hours(1);
    assert_eq!(store.record_throttle_failure("k", t0(), window).await.unwrap().failures, 1);
    let second = store.record_throttle_failure("k", t0() + Duration::minutes(1), window).await.unwrap();
    assert_eq!(second.failures, 2);
    assert_eq!(second.last_failure_at, t0() + Duration::minutes(1));
    assert_eq!(store.throttle_state("k").await.unwrap().unwrap(), second);
    // A failure long after the last one starts the count again.
    let fresh = store.record_throttle_failure("k", t0() + Duration::hours(3), window).await.unwrap();
    assert_eq!(fresh.failures, 1);
    store.record_throttle_failure("other", t0(), window).await.unwrap();
    store.clear_throttle("k").await.unwrap();
    assert!(store.throttle_state("k").await.unwrap().is_none());
    assert!(store.throttle_state("other").await.unwrap().is_some());
    store.record_throttle_failure("recent", t0() + Duration::hours(2), window).await.unwrap();
    assert_eq!(store.delete_stale_throttle(t0() + Duration::hours(1)).await.unwrap(), 1);
    assert!(store.throttle_state("other").await.unwrap().is_none());
    assert!(store.throttle_state("recent").await.unwrap().is_some());
}

async fn concurrent_throttle_failures_all_count(store: SharedStore) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_throttle_failure("race", t0(), Duration::hours(1)).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.throttle_state("race").await.unwrap().unwrap().failures, 20);
}

async fn one_time_tokens_are_single_use_and_expire(store: SharedStore) {
    let token = OneTimeToken {
        token_hash: TokenHash::of("secret"),
        purpose: "setup".into(),
        subject: Some("user-1".into()),
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
    };
    store.create_one_time_token(&token).await.unwrap();
    assert!(store.one_time_token_is_valid("setup", &token.token_hash, t0()).await.unwrap());
    assert!(!store.one_time_token_is_valid("reset", &token.token_hash, t0()).await.unwrap());
    assert!(store.consume_one_time_token("reset", &token.token_hash, t0()).await.unwrap().is_none(), "wrong purpose");
    assert_eq!(store.consume_one_time_token("setup", &token.token_hash, t0()).await.unwrap(), Some(token.clone()));
    assert!(store.consume_one_time_token("setup", &token.token_hash, t0()).await.unwrap().is_none(), "used twice");

    let expiring = OneTimeToken { token_hash: TokenHash::of("old"), ..token };
    store.create_one_time_token(&expiring).await.unwrap();
    let late = t0() + Duration::hours(2);
    assert!(!store.one_time_token_is_valid("setup", &expiring.token_hash, late).await.unwrap());
    assert!(store.consume_one_time_token("setup", &expiring.token_hash, late).await.unwrap().is_none());
    let fresh =
        OneTimeToken { token_hash: TokenHash::of("fresh"), expires_at: late + Duration::hours(1), ..expiring.clone() };
    store.create_one_time_token(&fresh).await.unwrap();
    let stale = OneTimeToken { token_hash: TokenHash::of("stale"), ..expiring.clone() };
    store.create_one_time_token(&stale).await.unwrap();
    assert_eq!(store.delete_expired_one_time_tokens(late).await.unwrap(), 1);
    assert!(store.one_time_token_is_valid("setup", &fresh.token_hash, late).await.unwrap());
}

async fn racing_consumers_use_a_token_once(store: SharedStore) {
    let token = OneTimeToken {
        token_hash: TokenHash::of("race"),
        purpose: "setup".into(),
        subject: None,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
    };
    store.create_one_time_token(&token).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        let hash = token.token_hash.clone();
        tasks.push(tokio::spawn(
            async move { store.consume_one_time_token("setup", &hash, t0()).await.unwrap().is_some() },
        ));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn settings_keep_the_first_value(store: SharedStore) {
    assert_eq!(store.setting_or_insert("key", "first").await.unwrap(), "first");
    assert_eq!(store.setting_or_insert("key", "second").await.unwrap(), "first");
    assert_eq!(store.setting_or_insert("other", "x").await.unwrap(), "x");
    assert_eq!(store.setting("missing").await.unwrap(), None);
    store.set_setting("key", "replaced").await.unwrap();
    assert_eq!(store.setting("key").await.unwrap().as_deref(), Some("replaced"));
    store.set_setting("new", "written").await.unwrap();
    assert_eq!(store.setting("new").await.unwrap().as_deref(), Some("written"));
    assert_eq!(store.setting_or_insert("new", "ignored").await.unwrap(), "written");
    store.ping().await.unwrap();
}

async fn pending_accounts_are_activated_or_swept(store: SharedStore) {
    let pending =
        NewUser { email_verified: false, pending_until: Some(t0() + Duration::hours(24)), ..new_user("newbie", &[]) };
    let user = store.create_account(pending, t0()).await.unwrap();
    assert!(user.is_pending() && !user.email_verified);
    let other =
        NewUser { email_verified: false, pending_until: Some(t0() + Duration::hours(1)), ..new_user("late", &[]) };
    store.create_account(other, t0()).await.unwrap();
    store.activate_user(&user.id, &[Role::parse("viewer").unwrap()], t0()).await.unwrap();
    let user = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert!(!user.is_pending() && user.email_verified && user.has_role("viewer"));
    assert_eq!(store.delete_expired_account_records(t0() + Duration::hours(2)).await.unwrap(), 1);
    assert!(store.user_by_login("late").await.unwrap().is_none(), "the unverified account was swept");
    assert!(store.user_by_login("newbie").await.unwrap().is_some(), "the verified one stays");
}

async fn emails_are_changed_only_to_free_addresses(store: SharedStore) {
    let alice = store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    store.create_user(new_user("bob", &[]), t0()).await.unwrap();
    let taken = Email::parse("bob@example.com").unwrap();
    assert!(matches!(store.set_verified_email(&alice.id, &taken, t0()).await, Err(StoreError::Conflict(_))));
    let free = Email::parse("alice@new.example").unwrap();
    store.set_verified_email(&alice.id, &free, t0()).await.unwrap();
    store.set_display_name(&alice.id, "Alice N.", t0()).await.unwrap();
    let alice = store.user_by_email(&free).await.unwrap().unwrap();
    assert_eq!((alice.username.as_str(), alice.display_name.as_str()), ("alice", "Alice N."));
}

async fn invites_are_listed_taken_once_and_revoked(store: SharedStore) {
    let email = Email::parse("guest@example.com").unwrap();
    let (invite, token) =
        Invite::new(email.clone(), vec![Role::parse("viewer").unwrap()], Some("cli".into()), t0(), Duration::days(7));
    store.create_invite(&invite).await.unwrap();
    let (second, _) = Invite::new(email, vec![], None, t0() + Duration::seconds(1), Duration::days(1));
    store.create_invite(&second).await.unwrap();
    assert_eq!(store.invite_by_token(&TokenHash::of(&token)).await.unwrap(), Some(invite.clone()));
    assert_eq!(store.list_invites().await.unwrap().len(), 2);
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (store, hash) = (store.clone(), TokenHash::of(&token));
            tokio::spawn(async move { store.take_invite(&hash).await.unwrap().is_some() })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1, "an invitation is used once");
    assert!(store.revoke_invite(&second.id).await.unwrap());
    assert!(!store.revoke_invite(&second.id).await.unwrap());
    assert!(store.list_invites().await.unwrap().is_empty());
}

async fn email_challenges_replace_count_and_are_taken_once(store: SharedStore) {
    let user = store.create_user(new_user("carol", &[]), t0()).await.unwrap();
    let email = Email::parse("carol@new.example").unwrap();
    let owner = Some(user.id.clone());
    let (first, _) = EmailChallenge::new(owner.clone(), ChallengePurpose::EmailChange, email.clone(), t0());
    store.create_email_challenge(&first).await.unwrap();
    let (second, secrets) = EmailChallenge::new(owner.clone(), ChallengePurpose::EmailChange, email.clone(), t0());
    store.create_email_challenge(&second).await.unwrap();
    assert!(store.email_challenge(&first.id).await.unwrap().is_none(), "a new challenge replaces the old one");
    assert_eq!(store.email_challenge_by_link(&TokenHash::of(&secrets.link_token)).await.unwrap(), Some(second.clone()));
    assert_eq!(store.claim_code_attempt(&second.id, t0()).await.unwrap().unwrap().attempts, 1);
    assert_eq!(store.claim_code_attempt(&second.id, t0()).await.unwrap().unwrap().attempts, 2);
    let latest = store.latest_email_challenge(&user.id, ChallengePurpose::EmailChange).await.unwrap().unwrap();
    assert_eq!(latest.attempts, 2);
    assert!(!store.take_email_challenge(&second.id, t0() + Duration::hours(1)).await.unwrap(), "expired");
    assert!(store.take_email_challenge(&second.id, t0()).await.unwrap());
    assert!(!store.take_email_challenge(&second.id, t0()).await.unwrap());
    // Decoys (no user) are stored and counted like real ones, and never replace each other.
    let (decoy, _) = EmailChallenge::new(None, ChallengePurpose::Registration, email.clone(), t0());
    store.create_email_challenge(&decoy).await.unwrap();
    let (other_decoy, _) = EmailChallenge::new(None, ChallengePurpose::Registration, email, t0());
    store.create_email_challenge(&other_decoy).await.unwrap();
    assert!(store.claim_code_attempt(&decoy.id, t0()).await.unwrap().unwrap().is_decoy());
    assert_eq!(store.delete_expired_account_records(t0() + Duration::hours(1)).await.unwrap(), 2);
}

async fn parallel_code_guesses_never_exceed_the_attempt_limit(store: SharedStore) {
    let user = store.create_user(new_user("dan", &[]), t0()).await.unwrap();
    let email = Email::parse("dan@example.com").unwrap();
    let (challenge, _) = EmailChallenge::new(Some(user.id), ChallengePurpose::Registration, email, t0());
    store.create_email_challenge(&challenge).await.unwrap();
    let guesses: Vec<_> = (0..40)
        .map(|_| {
            let (store, id) = (store.clone(), challenge.id.clone());
            tokio::spawn(async move { store.claim_code_attempt(&id, t0()).await.unwrap().is_some() })
        })
        .collect();
    let mut claimed = 0;
    for guess in guesses {
        claimed += usize::from(guess.await.unwrap());
    }
    assert_eq!(claimed as i64, gatehouse::domain::email_challenge::MAX_CODE_ATTEMPTS);
    assert!(store.claim_code_attempt(&challenge.id, t0()).await.unwrap().is_none());
}

async fn imports_write_everything_or_nothing(store: SharedStore) {
    let existing = store.create_user(new_user("dora", &["viewer"]), t0()).await.unwrap();
    let quiet = |_: usize| {};
    let creates = vec![new_user("eve", &["analyst"]), new_user("finn", &[])];
    let mut dora = new_user("dora", &["admin"]);
    dora.password_hash = None;
    dora.display_name = "Dora Updated".into();
    let counts = store.import_users(&creates, &[(existing.id.clone(), dora)], t0(), &quiet).await.unwrap();
    assert_eq!((counts.created, counts.updated), (2, 1));
    let dora = store.user_by_id(&existing.id).await.unwrap().unwrap();
    assert_eq!(dora.display_name, "Dora Updated");
    assert!(dora.has_role("admin") && !dora.has_role("viewer"));
    assert_eq!(dora.password_hash, existing.password_hash, "no new hash keeps the old one");

    // The second row breaks a rule: the first is not written either.
    let broken = vec![new_user("gina", &[]), new_user("eve", &[])];
    assert!(store.import_users(&broken, &[], t0(), &quiet).await.is_err());
    assert!(store.user_by_login("gina").await.unwrap().is_none(), "nothing of a failed import is kept");
    assert_eq!(store.count_users().await.unwrap(), 3);
}

fn grant_token(kind: GrantTokenKind, secret: &str, user: &UserId, grant: &str) -> GrantToken {
    GrantToken {
        token_hash: TokenHash::of(secret),
        kind,
        grant_id: grant.into(),
        client_id: "app".into(),
        user_id: user.clone(),
        session_id: Some(SessionId("s1".into())),
        scope: "openid email".into(),
        auth_time: t0(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(1),
        used_at: None,
        redirect_uri: Some("https://app.example/cb".into()),
        nonce: Some("n".into()),
        code_challenge: None,
    }
}

async fn racing_code_exchanges_get_one_fresh_use_and_replays(store: SharedStore) {
    let user = store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    let code = grant_token(GrantTokenKind::Code, "code", &user.id, "g1");
    store.create_grant_token(&code).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let user = user.id.clone();
        tasks.push(tokio::spawn(async move {
            let issued = [grant_token(GrantTokenKind::Access, &format!("access-{i}"), &user, "g1")];
            store.redeem_grant_token(GrantTokenKind::Code, &TokenHash::of("code"), t0(), &issued).await.unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
    let stored = store.grant_token(GrantTokenKind::Code, &TokenHash::of("code")).await.unwrap().unwrap();
    assert_eq!(stored.used_at, Some(t0()));
    // Exactly the winner's token was stored; the losers stored nothing.
    let mut stored_access = 0;
    for i in 0..10 {
        let hash = TokenHash::of(&format!("access-{i}"));
        stored_access += usize::from(store.grant_token(GrantTokenKind::Access, &hash).await.unwrap().is_some());
    }
    assert_eq!(stored_access, 1);
    // The kind is part of the key: a code is not a refresh token.
    assert!(!store.redeem_grant_token(GrantTokenKind::Refresh, &TokenHash::of("code"), t0(), &[]).await.unwrap());
    // All or nothing: when storing the new tokens fails, the code is not used up either.
    let second = grant_token(GrantTokenKind::Code, "second-code", &user.id, "g2");
    store.create_grant_token(&second).await.unwrap();
    // A new token, then every hash the race used: one of them (the winner's) is stored already.
    let mut clash = vec![grant_token(GrantTokenKind::Access, "fresh-access", &user.id, "g2")];
    clash.extend((0..10).map(|i| grant_token(GrantTokenKind::Access, &format!("access-{i}"), &user.id, "g2")));
    assert!(store.redeem_grant_token(GrantTokenKind::Code, &TokenHash::of("second-code"), t0(), &clash).await.is_err());
    let untouched = store.grant_token(GrantTokenKind::Code, &TokenHash::of("second-code")).await.unwrap().unwrap();
    assert_eq!(untouched.used_at, None, "the failed redemption was rolled back");
    assert!(store.grant_token(GrantTokenKind::Access, &TokenHash::of("fresh-access")).await.unwrap().is_none());
    // The session behind a grant.
    let (_, session) = new_session(&user.id, t0(), Duration::hours(1), Duration::days(1));
    store.create_session(session.clone()).await.unwrap();
    assert_eq!(store.grant_session(&session.id).await.unwrap().unwrap().id, session.id);
    assert!(store.grant_session(&SessionId("gone".into())).await.unwrap().is_none());
}

async fn grants_are_revoked_together_and_swept(store: SharedStore) {
    let user = store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    for (kind, secret, grant) in [
        (GrantTokenKind::Code, "c1", "g1"),
        (GrantTokenKind::Access, "a1", "g1"),
        (GrantTokenKind::Refresh, "r1", "g1"),
        (GrantTokenKind::Access, "a2", "g2"),
    ] {
        store.create_grant_token(&grant_token(kind, secret, &user.id, grant)).await.unwrap();
    }
    assert_eq!(store.revoke_grant("g1").await.unwrap(), 2, "access and refresh tokens; the code row stays");
    assert!(store.grant_token(GrantTokenKind::Access, &TokenHash::of("a1")).await.unwrap().is_none());
    assert!(store.grant_token(GrantTokenKind::Code, &TokenHash::of("c1")).await.unwrap().is_some());
    assert!(store.grant_token(GrantTokenKind::Access, &TokenHash::of("a2")).await.unwrap().is_some());
    assert_eq!(store.revoke_session_grants(&SessionId("s1".into())).await.unwrap(), 1);
    assert_eq!(store.delete_expired_grant_tokens(t0() + Duration::minutes(2)).await.unwrap(), 1);
    // Deleting the user deletes what was issued to them.
    store.create_grant_token(&grant_token(GrantTokenKind::Access, "a3", &user.id, "g3")).await.unwrap();
    store.delete_user(&user.id).await.unwrap();
    assert!(store.grant_token(GrantTokenKind::Access, &TokenHash::of("a3")).await.unwrap().is_none());
}

async fn oidc_clients_consents_and_keys_round_trip(store: SharedStore) {
    use gatehouse::domain::oidc::{ClientSecret, ClientSource, Consent, OidcClient, SigningAlgorithm};
    let client = OidcClient {
        client_id: "app".into(),
        name: "App".into(),
        secret: ClientSecret::Sha256(TokenHash::of("secret")),
        redirect_uris: vec!["https://app.example/cb".into(), "http://localhost:8501/cb".into()],
        post_logout_redirect_uris: vec!["https://app.example/".into()],
        first_party: true,
        allowed_roles: vec![Role::parse("analyst").unwrap()],
        source: ClientSource::Database,
        created_at: Some(t0()),
    };
    store.create_oidc_client(&client, t0()).await.unwrap();
    assert_eq!(store.oidc_client("app").await.unwrap(), Some(client.clone()));
    assert!(matches!(store.create_oidc_client(&client, t0()).await, Err(StoreError::Conflict("client_id"))));
    let public =
        OidcClient { client_id: "desk".into(), secret: ClientSecret::None, first_party: false, ..client.clone() };
    store.create_oidc_client(&public, t0()).await.unwrap();
    let ids: Vec<String> = store.list_oidc_clients().await.unwrap().into_iter().map(|c| c.client_id).collect();
    assert_eq!(ids, ["app", "desk"]);

    let user = store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    let consent =
        Consent { user_id: user.id.clone(), client_id: "desk".into(), scope: "openid".into(), granted_at: t0() };
    store.save_consent(&consent).await.unwrap();
    let wider = Consent { scope: "openid email".into(), ..consent.clone() };
    store.save_consent(&wider).await.unwrap();
    assert_eq!(store.consent(&user.id, "desk").await.unwrap(), Some(wider));
    assert!(store.delete_oidc_client("desk").await.unwrap());
    assert_eq!(store.consent(&user.id, "desk").await.unwrap(), None, "a removed client's consents go with it");
    assert!(!store.delete_oidc_client("desk").await.unwrap());

    // Keys: one current at a time; a rotation that lost a race gives way.
    let first = gatehouse::oidc::keys::generate(SigningAlgorithm::EdDsa, t0()).unwrap();
    store.add_signing_key(&first, None).await.unwrap();
    let second = gatehouse::oidc::keys::generate(SigningAlgorithm::Es256, t0() + Duration::hours(1)).unwrap();
    assert!(matches!(store.add_signing_key(&second, None).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.add_signing_key(&second, Some("not-current")).await, Err(StoreError::Conflict(_))));
    store.add_signing_key(&second, Some(&first.kid)).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0].kid.as_str(), keys[0].retired_at), (second.kid.as_str(), None));
    assert_eq!((keys[1].kid.as_str(), keys[1].retired_at), (first.kid.as_str(), Some(second.created_at)));
    assert_eq!(keys[1].private_pkcs8, first.private_pkcs8);
    assert_eq!(store.delete_signing_keys_retired_before(t0() + Duration::hours(2)).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
}

/// Runs every listed test once per backend, each on its own fresh database.
macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("store.db").display());
                    let store = gatehouse::store::open(&url).await.unwrap();
                    super::$test(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(schema) = crate::common::postgres::TestSchema::for_test(stringify!($test)).await
                    else {
                        return;
                    };
                    let store = gatehouse::store::open(&schema.url()).await.unwrap();
                    super::$test(store).await;
                }
            )*
        }
    };
}

backends!(
    users_round_trip,
    usernames_and_emails_are_unique,
    a_login_that_is_one_users_name_and_anothers_email_prefers_the_username,
    users_are_updated,
    users_are_listed_in_username_order,
    deleting_a_user_deletes_their_sessions,
    sessions_round_trip,
    sessions_are_listed_counted_and_swept,
    audit_is_appended_and_filtered_newest_first,
    throttle_counters_count_reset_and_clear,
    concurrent_throttle_failures_all_count,
    one_time_tokens_are_single_use_and_expire,
    racing_consumers_use_a_token_once,
    settings_keep_the_first_value,
    pending_accounts_are_activated_or_swept,
    emails_are_changed_only_to_free_addresses,
    invites_are_listed_taken_once_and_revoked,
    email_challenges_replace_count_and_are_taken_once,
    parallel_code_guesses_never_exceed_the_attempt_limit,
    imports_write_everything_or_nothing,
    racing_code_exchanges_get_one_fresh_use_and_replays,
    grants_are_revoked_together_and_swept,
    oidc_clients_consents_and_keys_round_trip,
);

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wal.db").display());
    let _store = gatehouse::store::open(&url).await.unwrap();
    assert!(dir.path().join("wal.db-wal").exists(), "no write-ahead log beside the database");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("wal.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database holds hashes and keys: owner-only");
}

/// Both backends apply the same sequence of migrations: the same versions with the same descriptions, so a
/// schema change made for one cannot be forgotten for the other.
#[test]
fn migration_sequences_are_in_step() {
    let names = |backend: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"), "migrations/sqlite and migrations/postgres must have the same files");
}

#[tokio::test]
async fn postgres_tests_clean_up_their_schema() {
    let Some(schema) = common::postgres::TestSchema::for_test("postgres_tests_clean_up_their_schema").await else {
        return;
    };
    let store = gatehouse::store::open(&schema.url()).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    store.create_user(new_user("alice", &[]), t0()).await.unwrap();
    let name = schema.url().rsplit('=').next().unwrap().to_owned();
    let server = schema.server().to_owned();
    drop(store);
    drop(schema);
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "schema {name} was left behind");
}
