//! Live revocation from another process: `gatehouse users disable|delete|passwd` run as the real binary
//! against a running server's database close the user's open WebSockets within a second — on SQLite (the
//! table of ended sessions the server reads every 250 ms) and, with two instances, on PostgreSQL
//! (LISTEN/NOTIFY). The servers here re-check open tunnels only every minute, so only the feed can do it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::postgres::TestSchema;
use common::upstream::start_echo_upstream;
use common::websocket::{closes_within, open_stream};
use common::{Browser, TestGatehouse};

const PASSWORD: &str = "correct horse battery";

/// One server on `db_url` with a long re-check and a long session cache (so neither can close anything).
async fn instance(db_url: &str) -> TestGatehouse {
    let upstream = start_echo_upstream().await;
    TestGatehouse::start_instance(db_url, Some(upstream), Duration::from_secs(3600), Duration::from_secs(60)).await
}

/// Runs `gatehouse ARGS` against `db_url` as its own process, like an operator in a shell.
fn gatehouse_cli(db_url: &str, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE__URL", db_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

async fn signed_in_with_a_tab(gatehouse: &TestGatehouse) -> (Browser, common::websocket::Socket) {
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let socket = open_stream(gatehouse, &browser).await;
    (browser, socket)
}

#[tokio::test]
async fn the_cli_closes_open_tabs_on_a_running_sqlite_server_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    let gatehouse = instance(&db_url).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    gatehouse.add_user("root", PASSWORD, &["admin"]).await;

    for (args, stdin) in [
        (vec!["users", "disable", "alice"], ""),
        (vec!["users", "passwd", "alice", "--password-stdin"], "tulip granite orbit lantern"),
        (vec!["users", "delete", "alice"], ""),
    ] {
        if args[1] != "disable" {
            // Back in: enabled again (after disable) or with the new password (after passwd).
            let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
            gatehouse.store().set_disabled(&alice.id, false, alice.updated_at).await.unwrap();
        }
        let password = if args[1] == "delete" { "tulip granite orbit lantern" } else { PASSWORD };
        let mut browser = gatehouse.signed_in("alice", password).await;
        let mut socket = open_stream(&gatehouse, &browser).await;
        gatehouse_cli(&db_url, &args, stdin);
        assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "{args:?} left the tab open");
        assert_eq!(browser.get("/").await.status(), 303, "{args:?}: the next page load goes to sign-in");
    }
}

#[tokio::test]
async fn signing_out_elsewhere_closes_the_tabs_of_that_session_only() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    let gatehouse = instance(&db_url).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let (mut first, mut first_tab) = signed_in_with_a_tab(&gatehouse).await;
    let (_second, mut second_tab) = signed_in_with_a_tab(&gatehouse).await;
    // A second server on the same file: the sign-out happens there.
    let other = instance(&db_url).await;
    let mut elsewhere = other.browser();
    elsewhere.cookies = first.cookies.clone();
    elsewhere.sign_out().await;
    assert!(closes_within(&mut first_tab, Duration::from_secs(1)).await, "the signed-out session's tab stayed open");
    assert!(!closes_within(&mut second_tab, Duration::from_millis(600)).await, "another session's tab was closed");
    assert_eq!(first.get("/").await.status(), 303);
}

#[tokio::test]
async fn the_cli_closes_tabs_on_every_postgresql_instance_within_a_second() {
    let Some(schema) = TestSchema::for_test("the_cli_closes_tabs_on_every_postgresql_instance").await else { return };
    let a = instance(&schema.url()).await;
    let b = instance(&schema.url()).await;
    a.add_user("alice", PASSWORD, &[]).await;
    a.add_user("root", PASSWORD, &["admin"]).await;
    let (through_a, mut tab_a) = signed_in_with_a_tab(&a).await;
    let mut through_b = b.browser();
    through_b.cookies = through_a.cookies.clone();
    let mut tab_b = open_stream(&b, &through_b).await;

    gatehouse_cli(&schema.url(), &["users", "disable", "alice"], "");
    assert!(closes_within(&mut tab_a, Duration::from_secs(1)).await, "instance A kept the tab open");
    assert!(closes_within(&mut tab_b, Duration::from_secs(1)).await, "instance B kept the tab open");
    assert_eq!(through_b.get("/").await.status(), 303);
}
