//! Session lifetimes, driven by moving the injected clock (never by sleeping), and sessions surviving a
//! restart of Gatehouse.

mod common;

use common::upstream::start_echo_upstream;
use common::{Clock, TestGatehouse};
use time::Duration;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn idle_sessions_expire_and_activity_keeps_them_alive() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;

    gatehouse.clock.advance(Duration::hours(11) + Duration::minutes(59));
    assert_eq!(browser.get("/").await.status(), 200, "still inside the 12 h idle timeout");
    gatehouse.clock.advance(Duration::hours(11) + Duration::minutes(59));
    assert_eq!(browser.get("/").await.status(), 200, "the last request restarted the idle timer");
    gatehouse.clock.advance(Duration::hours(12));
    assert_eq!(browser.get("/").await.status(), 303, "idle for 12 h: signed out");
}

#[tokio::test]
async fn sessions_end_at_the_absolute_timeout_even_when_active() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    for _ in 0..27 {
        gatehouse.clock.advance(Duration::hours(6));
        assert_eq!(browser.get("/").await.status(), 200);
    }
    // 6 d 18 h so far; the next step crosses 7 days.
    gatehouse.clock.advance(Duration::hours(6));
    assert_eq!(browser.get("/").await.status(), 303);
}

#[tokio::test]
async fn remember_me_lasts_thirty_days_without_activity() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.browser();
    assert_eq!(browser.sign_in("alice", PASSWORD, true).await.status(), 303);
    gatehouse.clock.advance(Duration::days(20));
    assert_eq!(browser.get("/").await.status(), 200, "remembered sessions survive long idle periods");
    gatehouse.clock.advance(Duration::days(10));
    assert_eq!(browser.get("/").await.status(), 303, "but not past 30 days");
}

#[tokio::test]
async fn configured_timeouts_are_honoured() {
    let gatehouse = TestGatehouse::start_with(
        Some(start_echo_upstream().await),
        "session.idle_timeout = \"30m\"\nsession.absolute_timeout = \"2h\"\n",
    )
    .await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    gatehouse.clock.advance(Duration::minutes(29));
    assert_eq!(browser.get("/").await.status(), 200);
    gatehouse.clock.advance(Duration::minutes(30));
    assert_eq!(browser.get("/").await.status(), 303);
}

#[tokio::test]
async fn every_sign_in_gets_a_new_token() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let first = gatehouse.signed_in("alice", PASSWORD).await;
    let second = gatehouse.signed_in("alice", PASSWORD).await;
    assert_ne!(first.session_cookie(), second.session_cookie());
    let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    assert_eq!(gatehouse.store().sessions_for_user(&alice.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_restart_keeps_everyone_signed_in() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let cookies = browser.cookies.clone();

    let restarted = gatehouse.restart().await;
    let mut browser = restarted.browser();
    browser.cookies = cookies;
    let report = browser.echo("/", &[]).await;
    assert_eq!(common::echoed_header(&report, "x-gatehouse-user"), vec!["alice"]);
    // The CSRF key survived too: a form loaded before the restart can still be submitted.
    assert_eq!(browser.sign_out().await.status(), 303);
}

#[tokio::test]
async fn expired_sessions_are_swept_from_the_database() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let _browser = gatehouse.signed_in("alice", PASSWORD).await;
    let now = gatehouse.clock.now();
    assert_eq!(gatehouse.store().count_active_sessions(now).await.unwrap(), 1);
    assert_eq!(gatehouse.store().delete_expired_sessions(now).await.unwrap(), 0);
    let later = now + Duration::hours(13);
    assert_eq!(gatehouse.store().count_active_sessions(later).await.unwrap(), 0);
    assert_eq!(gatehouse.store().delete_expired_sessions(later).await.unwrap(), 1);
}

#[tokio::test]
async fn the_session_cache_serves_briefly_and_forgets_sign_outs_at_once() {
    let gatehouse =
        TestGatehouse::start_cached(Some(start_echo_upstream().await), std::time::Duration::from_secs(1)).await;
    let alice = gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    assert_eq!(browser.get("/").await.status(), 200);

    // A change this server was not told about (another instance, the CLI) is seen within the TTL...
    gatehouse.store().set_disabled(&alice.id, true, gatehouse.clock.now()).await.unwrap();
    assert_eq!(browser.get("/").await.status(), 200, "served from the cache inside the TTL");
    gatehouse.clock.advance(Duration::seconds(1));
    assert_eq!(browser.get("/").await.status(), 303, "the cache must not outlive its TTL");

    // ...while a sign-out through this server takes effect at once.
    gatehouse.store().set_disabled(&alice.id, false, gatehouse.clock.now()).await.unwrap();
    let mut bob = gatehouse.signed_in("alice", PASSWORD).await;
    assert_eq!(bob.get("/").await.status(), 200);
    let old_cookie = bob.session_cookie().unwrap().clone();
    // The same session cached by both workers: each browser has its own connection, and connections go to
    // the least loaded worker.
    let mut tabs = [gatehouse.browser(), gatehouse.browser()];
    for tab in &mut tabs {
        tab.cookies.insert("gatehouse_session".into(), old_cookie.clone());
        assert_eq!(tab.get("/").await.status(), 200);
    }
    bob.sign_out().await;
    bob.cookies.insert("gatehouse_session".into(), old_cookie);
    assert_eq!(bob.get("/").await.status(), 303);
    for tab in &mut tabs {
        assert_eq!(tab.get("/").await.status(), 303, "evicted from every worker's cache");
    }
    // Idle expiry still ends a cached session.
    let mut carol = gatehouse.signed_in("alice", PASSWORD).await;
    assert_eq!(carol.get("/").await.status(), 200);
    gatehouse.clock.advance(Duration::hours(13));
    assert_eq!(carol.get("/").await.status(), 303);
}

#[tokio::test]
async fn a_busy_sessions_validation_is_refreshed_ahead_of_its_expiry() {
    let gatehouse =
        TestGatehouse::start_cached(Some(start_echo_upstream().await), std::time::Duration::from_secs(1)).await;
    let alice = gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    assert_eq!(browser.get("/").await.status(), 200);

    // Disabled behind this server's back; the cached validation is half a second old, not expired.
    gatehouse.store().set_disabled(&alice.id, true, gatehouse.clock.now()).await.unwrap();
    gatehouse.clock.advance(Duration::milliseconds(600));
    assert_eq!(browser.get("/").await.status(), 200, "still served from the cache, which starts a refresh");
    // The refresh runs in the background and finds the user disabled: the clock has not moved, yet the
    // session is refused, well before the cache entry would have expired.
    let started = std::time::Instant::now();
    loop {
        if browser.get("/").await.status() == 303 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "the refresh never replaced the entry");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
