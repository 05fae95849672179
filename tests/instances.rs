//! Several Gatehouse instances sharing one PostgreSQL database, as behind a load balancer: a session made
//! through one works through the other, and ending it through one is enforced by the other within a second,
//! open WebSockets included (LISTEN/NOTIFY). Skipped without `GATEHOUSE_TEST_POSTGRES_URL` (see
//! `tests/common/postgres.rs`).

mod common;

use std::time::{Duration, Instant};

use common::postgres::TestSchema;
use common::upstream::start_echo_upstream;
use common::websocket::{closes_within, open_stream};
use common::{Clock, TestGatehouse};

const PASSWORD: &str = "correct horse battery";

/// Two instances on one schema. The session cache never expires on its own here (the test clocks stand
/// still) and WebSockets are re-checked only every minute, so only the notification can end things in time.
async fn two_instances(schema: &TestSchema) -> (TestGatehouse, TestGatehouse) {
    let upstream = start_echo_upstream().await;
    let cache = Duration::from_secs(3600);
    let recheck = Duration::from_secs(60);
    let a = TestGatehouse::start_instance(&schema.url(), Some(upstream), cache, recheck).await;
    let b = TestGatehouse::start_instance(&schema.url(), Some(upstream), cache, recheck).await;
    (a, b)
}

/// Polls until `check` holds or `limit` passes; returns how long it took, if it held.
async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_another_and_ends_on_both() {
    let Some(schema) = TestSchema::for_test("a_session_made_on_one_instance_works_on_another_and_ends_on_both").await
    else {
        return;
    };
    let (a, b) = two_instances(&schema).await;
    a.add_user("alice", PASSWORD, &[]).await;

    let mut through_a = a.signed_in("alice", PASSWORD).await;
    assert_eq!(through_a.get("/").await.status(), 200);
    let mut through_b = b.browser();
    through_b.cookies = through_a.cookies.clone();
    assert_eq!(through_b.get("/").await.status(), 200, "the session is in the shared database");
    let mut socket = open_stream(&a, &through_a).await;

    // Sign out through B: A has the session cached and a tunnel open for it.
    through_b.sign_out().await;
    let refused = within(Duration::from_secs(1), || {
        let mut replay = a.browser();
        replay.cookies = through_a.cookies.clone();
        async move { replay.get("/").await.status() == 303 }
    })
    .await;
    assert!(refused.is_some(), "instance A still accepted the session a second after B ended it");
    assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "A kept the WebSocket open");
    assert_eq!(through_a.get("/").await.status(), 303);
}

#[tokio::test]
async fn disabling_a_user_from_another_process_closes_their_tunnels_at_once() {
    let Some(schema) = TestSchema::for_test("disabling_a_user_from_another_process_closes_their_tunnels_at_once").await
    else {
        return;
    };
    let (a, b) = two_instances(&schema).await;
    let alice = a.add_user("alice", PASSWORD, &[]).await;
    let browser = a.signed_in("alice", PASSWORD).await;
    let mut socket = open_stream(&a, &browser).await;

    // What `gatehouse users disable` does, from a process of its own (a separate store connection).
    let cli = gatehouse::store::open(&schema.url()).await.unwrap();
    cli.set_disabled(&alice.id, true, b.clock.now()).await.unwrap();
    cli.delete_user_sessions(&alice.id).await.unwrap();
    assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "the disabled user's WebSocket stayed open");
}

#[tokio::test]
async fn throttling_counts_failures_on_every_instance_together() {
    let Some(schema) = TestSchema::for_test("throttling_counts_failures_on_every_instance_together").await else {
        return;
    };
    let (a, b) = two_instances(&schema).await;
    a.add_user("alice", PASSWORD, &[]).await;
    // Alternate instances: the counters live in the database, so spreading guesses does not multiply them.
    let mut statuses = Vec::new();
    for attempt in 0..8 {
        let instance = if attempt % 2 == 0 { &a } else { &b };
        let mut browser = instance.browser();
        statuses.push(browser.sign_in("alice", "wrong password", false).await.status().as_u16());
    }
    // The policy lets 5 failures through free and delays after the 6th. Counted per instance, each would
    // have seen only 4 of these 8 and none would be throttled.
    let first_throttled = statuses.iter().position(|s| *s == 429);
    assert_eq!(first_throttled, Some(6), "shared counters throttle the 7th attempt: {statuses:?}");
}

/// `gatehouse serve` as a process of its own, killed when dropped.
struct Process {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Process {
    async fn serve(db_url: &str, upstream: std::net::SocketAddr) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--listen", &addr.to_string(), "--upstream", &format!("http://{upstream}")])
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_DATABASE__URL", db_url)
            .env("GATEHOUSE_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let process = Self { child, addr };
        let health = format!("http://{addr}/_gatehouse/health");
        let ready = within(Duration::from_secs(10), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        assert!(ready.is_some(), "gatehouse serve on {addr} did not become healthy");
        process
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_gatehouse_processes_share_sessions_and_revocation() {
    let Some(schema) = TestSchema::for_test("two_gatehouse_processes_share_sessions_and_revocation").await else {
        return;
    };
    let added = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["users", "add", "alice", "--password-stdin"])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE__URL", schema.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(added.success());
    let upstream = start_echo_upstream().await;
    let a = Process::serve(&schema.url(), upstream).await;
    let b = Process::serve(&schema.url(), upstream).await;

    let mut through_a = common::Browser::new(a.addr);
    assert_eq!(through_a.sign_in("alice", PASSWORD, false).await.status(), 303);
    let mut through_b = common::Browser::new(b.addr);
    through_b.cookies = through_a.cookies.clone();
    assert_eq!(through_b.get("/").await.status(), 200, "a session made through A works through B");
    let mut socket = common::websocket::open_stream_at(a.addr, &through_a).await;

    // Sign out through B. A's WebSocket re-check runs every 10 s; only B's notification can close it in time.
    through_b.sign_out().await;
    assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "A kept the WebSocket open after sign-out on B");
    assert_eq!(through_a.get("/").await.status(), 303, "A refuses the ended session");
}
