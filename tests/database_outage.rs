//! PostgreSQL going away and coming back while Gatehouse runs: it fails closed (no request reaches the app
//! without a checked session, sign-in and the app answer 503 with a page that says why, health reports the
//! database down) and recovers by itself when the database returns, without a restart. Uses a throw-away
//! cluster the test stops and starts (`tests/common/cluster.rs`).

mod common;

use std::time::{Duration, Instant};

use common::TestGatehouse;
use common::cluster::Cluster;
use common::upstream::start_echo_upstream;
use common::websocket::{closes_within, open_stream};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn losing_the_database_fails_closed_and_recovers_without_a_restart() {
    let Some(cluster) = Cluster::start_new("losing_the_database_fails_closed_and_recovers_without_a_restart") else {
        return;
    };
    // No session cache: every request asks the database, the strictest case.
    let gatehouse = TestGatehouse::start_instance(
        &cluster.url(),
        Some(start_echo_upstream().await),
        Duration::ZERO,
        Duration::from_secs(60),
    )
    .await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let through = browser.get("/").await;
    assert_eq!(through.status(), 200);
    assert!(through.text().await.unwrap().contains("\"body_len\""), "the echo upstream answered");

    cluster.stop();
    let page = browser.get("/").await;
    assert_eq!(page.status(), 503, "a request whose session cannot be checked must not reach the app");
    let body = page.text().await.unwrap();
    assert!(body.contains("cannot reach its database"), "{body}");
    assert!(!body.contains("\"body_len\""), "the app's (echo upstream's) answer leaked through");

    let mut stranger = gatehouse.browser();
    let sign_in = stranger.sign_in("alice", PASSWORD, false).await;
    assert_eq!(sign_in.status(), 503);
    assert!(sign_in.text().await.unwrap().contains("Temporarily unavailable"));

    let health = reqwest::get(gatehouse.url("/_gatehouse/health")).await.unwrap();
    assert_eq!(health.status(), 503);
    let report: serde_json::Value = health.json().await.unwrap();
    assert_eq!(report["database"]["status"], "down");

    cluster.start();
    let started = Instant::now();
    loop {
        if browser.get("/").await.status() == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "Gatehouse did not recover after the database returned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = reqwest::get(gatehouse.url("/_gatehouse/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let mut again = gatehouse.browser();
    assert_eq!(again.sign_in("alice", PASSWORD, false).await.status(), 303, "sign-in works again");

    // The session-event feed (LISTEN) reconnected too: a session ended by another process closes its tunnel
    // long before the 60 s re-check could.
    let mut socket = open_stream(&gatehouse, &again).await;
    let elsewhere = gatehouse::store::open(&cluster.url()).await.unwrap();
    let alice = elsewhere.user_by_login("alice").await.unwrap().unwrap();
    elsewhere.delete_user_sessions(&alice.id).await.unwrap();
    assert!(closes_within(&mut socket, Duration::from_secs(3)).await, "no session events after the outage");
}
