//! `gatehouse db copy`: an installation moved from SQLite to PostgreSQL and back keeps every user, role,
//! session (the same cookie still signs in), audit event (in order), token, counter and key; a target that
//! is not empty is refused; and a copy that fails half-way leaves the target without a single row.
//! Needs PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`, see `tests/common/postgres.rs`).

mod common;

use common::postgres::TestSchema;
use gatehouse::domain::{
    AuditEvent, AuditKind, ChallengePurpose, Email, EmailChallenge, Invite, NewSession, NewUser, Role, SessionId,
    SessionToken, Username,
};
use gatehouse::store::copy::{Copied, CopyError, Progress, copy_database};
use gatehouse::store::{AuditFilter, OneTimeToken, SharedStore};
use time::{Duration, OffsetDateTime};

struct Quiet;

impl Progress for Quiet {
    fn update(&mut self, _: &str, _: u64, _: u64) {}
    fn finish_table(&mut self, _: &str, _: u64) {}
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// A small installation: two users (one disabled, one with roles), a live session, audit events, a token,
/// a throttling counter and a key. Returns the session's token.
async fn fill(store: &SharedStore) -> SessionToken {
    let mut ids = Vec::new();
    for (name, roles) in [("alice", vec!["admin", "viewer"]), ("bob", vec![])] {
        let user = NewUser {
            username: Username::parse(name).unwrap(),
            email: Some(Email::parse(&format!("{name}@example.com")).unwrap()),
            display_name: format!("User {name}"),
            roles: roles.into_iter().map(|r| Role::parse(r).unwrap()).collect(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            email_verified: true,
            pending_until: None,
            disabled: false,
        };
        ids.push(store.create_user(user, t0()).await.unwrap().id);
    }
    store.set_disabled(&ids[1], true, t0()).await.unwrap();
    store.record_login(&ids[0], t0()).await.unwrap();
    let token = SessionToken::generate();
    store
        .create_session(NewSession {
            id: SessionId::generate(),
            token_hash: token.hash(),
            user_id: ids[0].clone(),
            created_at: t0(),
            expires_at: t0() + Duration::days(7),
            idle_timeout: Duration::hours(12),
            remember_me: true,
            client_ip: Some("192.0.2.1".into()),
            user_agent: None,
        })
        .await
        .unwrap();
    for (i, kind) in [AuditKind::SignIn, AuditKind::SignInFailed, AuditKind::SignOut].into_iter().enumerate() {
        let event = AuditEvent::new(t0() + Duration::seconds(i as i64), kind).subject("alice").detail(format!("#{i}"));
        store.append_audit(&event).await.unwrap();
    }
    let setup = OneTimeToken {
        token_hash: SessionToken::generate().hash(),
        purpose: "setup".into(),
        subject: None,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
    };
    store.create_one_time_token(&setup).await.unwrap();
    store.record_throttle_failure("ip:192.0.2.9", t0(), Duration::hours(1)).await.unwrap();
    store.setting_or_insert("csrf_hmac_key", "the-key").await.unwrap();
    let email = Email::parse("invitee@example.com").unwrap();
    let (invite, _) =
        Invite::new(email.clone(), vec![Role::parse("viewer").unwrap()], Some("alice".into()), t0(), Duration::days(7));
    store.create_invite(&invite).await.unwrap();
    let (challenge, _) = EmailChallenge::new(Some(ids[0].clone()), ChallengePurpose::EmailChange, email, t0());
    store.create_email_challenge(&challenge).await.unwrap();
    fill_oidc(store, &ids[0]).await;
    token
}

/// One of each OpenID Connect record: a client, a refresh token, a consent and a signing key.
async fn fill_oidc(store: &SharedStore, user: &gatehouse::domain::UserId) {
    use gatehouse::domain::oidc::*;
    let client = OidcClient {
        client_id: "reports".into(),
        name: "Reports".into(),
        secret: ClientSecret::Sha256(SessionToken::generate().hash()),
        redirect_uris: vec!["https://reports.example/oauth2callback".into()],
        post_logout_redirect_uris: vec![],
        first_party: true,
        allowed_roles: vec![Role::parse("viewer").unwrap()],
        source: ClientSource::Database,
        created_at: Some(t0()),
    };
    store.create_oidc_client(&client, t0()).await.unwrap();
    let token = GrantToken {
        token_hash: SessionToken::generate().hash(),
        kind: GrantTokenKind::Refresh,
        grant_id: "grant-1".into(),
        client_id: "reports".into(),
        user_id: user.clone(),
        session_id: None,
        scope: "openid email".into(),
        auth_time: t0(),
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
        used_at: None,
        redirect_uri: None,
        nonce: None,
        code_challenge: None,
    };
    store.create_grant_token(&token).await.unwrap();
    let consent =
        Consent { user_id: user.clone(), client_id: "reports".into(), scope: "openid".into(), granted_at: t0() };
    store.save_consent(&consent).await.unwrap();
    let key = gatehouse::oidc::keys::generate(SigningAlgorithm::EdDsa, t0()).unwrap();
    store.add_signing_key(&key, None).await.unwrap();
}

/// The OpenID Connect records, read back through the store.
async fn oidc_snapshot(store: &SharedStore) -> String {
    let clients = store.list_oidc_clients().await.unwrap();
    let consent = store.consent(&clients_user(store).await, "reports").await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    let key_material: Vec<_> = keys.iter().map(|k| (&k.private_pkcs8, &k.public_jwk)).collect();
    format!("{clients:?}\n{consent:?}\n{keys:?}\n{key_material:?}")
}

async fn clients_user(store: &SharedStore) -> gatehouse::domain::UserId {
    store.list_users().await.unwrap()[0].id.clone()
}

/// Everything a copy must keep, read back through the store.
async fn snapshot(store: &SharedStore, token: &SessionToken) -> String {
    let users = store.list_users().await.unwrap();
    let (session, user) = store.session_by_token_hash(&token.hash()).await.unwrap().expect("the session survives");
    let audit = store.list_audit(&AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    let throttle = store.throttle_state("ip:192.0.2.9").await.unwrap();
    let key = store.setting_or_insert("csrf_hmac_key", "another").await.unwrap();
    let invites = store.list_invites().await.unwrap();
    let challenge = store.latest_email_challenge(&user.id, ChallengePurpose::EmailChange).await.unwrap();
    let oidc = oidc_snapshot(store).await;
    format!("{users:?}\n{session:?}\n{user:?}\n{audit:?}\n{throttle:?}\n{key}\n{invites:?}\n{challenge:?}\n{oidc}")
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

#[tokio::test]
async fn an_installation_moves_to_postgres_and_back_unchanged() {
    let Some(schema) = TestSchema::for_test("an_installation_moves_to_postgres_and_back_unchanged").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let original_url = sqlite_url(&dir, "original.db");
    let original = gatehouse::store::open(&original_url).await.unwrap();
    let token = fill(&original).await;
    let before = snapshot(&original, &token).await;

    let Copied(counts) = copy_database(&original_url, &schema.url(), &mut Quiet).await.unwrap();
    let expected = [
        ("users", 2),
        ("user_roles", 2),
        ("sessions", 1),
        ("audit_log", 3),
        ("one_time_tokens", 1),
        ("invites", 1),
        ("email_challenges", 1),
        ("throttle", 1),
        ("settings", 1),
        ("oidc_clients", 1),
        ("oidc_tokens", 1),
        ("oidc_consents", 1),
        ("oidc_signing_keys", 1),
    ];
    assert_eq!(counts, expected.to_vec());
    let moved = gatehouse::store::open(&schema.url()).await.unwrap();
    assert_eq!(snapshot(&moved, &token).await, before, "PostgreSQL holds the same installation");
    assert!(moved.user_by_login("bob").await.unwrap().unwrap().disabled, "flags survive the change of type");

    let back_url = sqlite_url(&dir, "back.db");
    copy_database(&schema.url(), &back_url, &mut Quiet).await.unwrap();
    let back = gatehouse::store::open(&back_url).await.unwrap();
    assert_eq!(snapshot(&back, &token).await, before, "and back to SQLite, still the same");
}

#[tokio::test]
async fn a_target_with_data_is_refused_and_a_failed_copy_leaves_the_target_empty() {
    let Some(schema) =
        TestSchema::for_test("a_target_with_data_is_refused_and_a_failed_copy_leaves_the_target_empty").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source_url = sqlite_url(&dir, "source.db");
    let source = gatehouse::store::open(&source_url).await.unwrap();
    fill(&source).await;

    let target = gatehouse::store::open(&schema.url()).await.unwrap();
    target.setting_or_insert("csrf_hmac_key", "an instance already started here").await.unwrap();
    match copy_database(&source_url, &schema.url(), &mut Quiet).await {
        Err(CopyError::Refused(message)) => assert!(message.contains("not empty"), "{message}"),
        other => panic!("a target with data was not refused: {other:?}"),
    }
    assert!(matches!(copy_database(&source_url, &source_url, &mut Quiet).await, Err(CopyError::Refused(_))));

    // A value SQLite keeps and PostgreSQL refuses (a NUL character), in the last table copied: users,
    // sessions and the audit log are written first, then the copy fails, and none of it may remain.
    let fresh = schema.sibling().await;
    let raw = sqlx::SqlitePool::connect(&source_url).await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('broken', 'a' || char(0) || 'b')")
        .execute(&raw)
        .await
        .unwrap();
    match copy_database(&source_url, &fresh.url(), &mut Quiet).await {
        Err(CopyError::Failed(_)) => {}
        other => panic!("the copy should have failed: {other:?}"),
    }
    let left = gatehouse::store::open(&fresh.url()).await.unwrap();
    assert_eq!(left.count_users().await.unwrap(), 0, "a failed copy left users behind");
    assert!(left.list_audit(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
}
