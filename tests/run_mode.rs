//! `gatehouse run` as a real process supervising a real child: the child gets `$PORT`, requests wait on a
//! "starting" page until it answers, a crashed child is restarted, and SIGTERM stops both cleanly.
//! The child is Python's built-in HTTP server (Python is already needed for the Streamlit tests). What other
//! local users can and cannot do to the app is in tests/isolation.rs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::run::{RunOptions, RunningGatehouse, free_port};

const SLOW_APP: &str = "env > app-env.txt; sleep 3; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1";

#[tokio::test]
async fn the_child_gets_port_and_the_proxy_waits_for_it() {
    let gatehouse = RunningGatehouse::start(SLOW_APP);
    gatehouse.wait_for_upstream("starting", Duration::from_secs(10)).await;
    // While the app starts, health says so with 503.
    let response = reqwest::get(gatehouse.url("/_gatehouse/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let env = std::fs::read_to_string(gatehouse.path("app-env.txt")).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PORT=")), "{env}");
    assert!(env.contains("GATEHOUSE_ASSERTION_PUBLIC_KEY="));
    assert!(!env.contains("GATEHOUSE_DATABASE__URL"), "Gatehouse's own settings leaked into the app's environment");
}

#[tokio::test]
async fn a_dead_child_is_restarted() {
    // Serves for two seconds, then dies; Gatehouse must bring it back.
    let gatehouse =
        RunningGatehouse::start("python3 -m http.server \"$PORT\" --bind 127.0.0.1 & pid=$!; sleep 2; kill $pid");
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    gatehouse.wait_for_upstream("starting", Duration::from_secs(10)).await;
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
}

#[tokio::test]
async fn sigterm_stops_gatehouse_and_the_child() {
    let mut gatehouse = RunningGatehouse::start("exec python3 -m http.server \"$PORT\" --bind 127.0.0.1");
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    // An idle keep-alive connection (a browser's pooled one) must not hold the stop up: no lingering close
    // after a request without a body.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", gatehouse.port)).await.unwrap();
    idle.write_all(b"GET /_gatehouse/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
    let pid = nix::unistd::Pid::from_raw(gatehouse.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = gatehouse.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "gatehouse did not stop promptly after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(gatehouse.health().await.is_none(), "still listening after exit");
    drop(idle);
}

#[tokio::test]
async fn a_first_run_prints_the_setup_link() {
    let mut gatehouse = RunningGatehouse::start(SLOW_APP);
    gatehouse.wait_for_upstream("starting", Duration::from_secs(10)).await;
    gatehouse.stop();
    let output = stdout_of(&mut gatehouse);
    assert!(output.contains(&format!("http://127.0.0.1:{}/_gatehouse/setup?token=", gatehouse.port)), "{output}");
}

#[tokio::test]
async fn once_the_app_is_ready_gatehouse_says_where_to_open_it_and_repeats_the_setup_link() {
    // Streamlit prints its own (private) URL after Gatehouse's setup link: the link must come again after it.
    let mut gatehouse = RunningGatehouse::start("exec python3 -m http.server \"$PORT\" --bind 127.0.0.1");
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    gatehouse.stop();
    let output = stdout_of(&mut gatehouse);
    let ready = format!("Gatehouse is ready: open http://127.0.0.1:{}/", gatehouse.port);
    let ready_at = output.find(&ready).unwrap_or_else(|| panic!("{output}"));
    assert_eq!(output.matches("/_gatehouse/setup?token=").count(), 2, "{output}");
    assert!(output[ready_at..].contains("/_gatehouse/setup?token="), "the link comes again after: {output}");

    // With an administrator already there, only where to go.
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        admins: &[("root", "correct horse battery staple")],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    gatehouse.stop();
    let output = stdout_of(&mut gatehouse);
    assert!(output.contains("Gatehouse is ready: open"), "{output}");
    assert!(!output.contains("setup?token="), "{output}");
}

#[tokio::test]
async fn with_users_but_no_administrator_every_start_prints_the_setup_link_and_the_cli_way() {
    // As the README's first steps leave it: `users add alice --role analyst`, then `run`.
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        users: &[("alice", "correct horse battery staple")],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    gatehouse.stop();
    let output = stdout_of(&mut gatehouse);
    assert!(output.contains("Gatehouse has no administrator."), "{output}");
    assert_eq!(output.matches("/_gatehouse/setup?token=").count(), 2, "at start and once ready: {output}");
    assert!(output.contains("Or from the command line: gatehouse users roles NAME --add admin"), "{output}");
}

#[tokio::test]
async fn under_nohup_a_hangup_is_ignored_and_an_inherited_ignored_interrupt_still_stops_the_app() {
    // Started as `nohup gatehouse run ... &` from a script: SIGHUP and SIGINT arrive ignored.
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "echo $$ > app.pid; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        ignored_signals: &[libc::SIGHUP, libc::SIGINT],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let pid = nix::unistd::Pid::from_raw(gatehouse.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gatehouse.child.try_wait().unwrap().is_none(), "a hangup under nohup stopped Gatehouse");
    gatehouse.wait_for_upstream("ok", Duration::from_secs(5)).await;

    // Gatehouse passes SIGINT on; the app must not have inherited it as ignored, or it would take the full
    // grace period and a SIGKILL.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    while gatehouse.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(15), "gatehouse did not stop after SIGINT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the app ignored the SIGINT passed on: {:?}",
        started.elapsed()
    );
}

fn stdout_of(gatehouse: &mut RunningGatehouse) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(stdout) = gatehouse.child.stdout.as_mut() {
        let _ = stdout.read_to_string(&mut text);
    }
    text
}

#[test]
fn a_command_that_cannot_start_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["run", "--listen", &format!("127.0.0.1:{}", free_port()), "--", "/nonexistent/app"])
        .current_dir(dir.path())
        .env("GATEHOUSE_DATABASE__URL", format!("sqlite://{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not start '/nonexistent/app'"));
}

/// Signs in and uses the app with debug logging on, in text and JSON formats: the logs must never show the
/// password, the session token, the CSRF values or a query string. (The app's own output, which passes
/// through, is silenced here: what it logs is the app's business.)
#[tokio::test]
async fn logs_never_contain_secrets() {
    for format in ["text", "json"] {
        let password = "Sup3r-secret-passphrase";
        let mut gatehouse = RunningGatehouse::start_with(RunOptions {
            app: "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 2>/dev/null",
            env: &[("GATEHOUSE_LOG__FORMAT", format), ("RUST_LOG", "debug")],
            log_file: Some("gatehouse.log"),
            users: &[("alice", password)],
            ..Default::default()
        });
        gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
        let alice = gatehouse.sign_in("alice", password).await;
        let proxied = alice.get(&gatehouse.url("/?token=query-secret")).await;
        assert_eq!(proxied.status(), 200);

        gatehouse.stop();
        let logs = std::fs::read_to_string(gatehouse.path("gatehouse.log")).unwrap();
        assert!(logs.contains("signed in"), "{format} logs lack the sign-in line:\n{logs}");
        let session_token = alice.session.split_once('=').unwrap().1;
        let csrf_value = alice.csrf_cookie.split_once('=').unwrap().1;
        for secret in [password, session_token, csrf_value, alice.csrf_token.as_str(), "query-secret"] {
            assert!(!logs.contains(secret), "{format} logs contain a secret ({secret}):\n{logs}");
        }
    }
}

#[test]
fn an_app_that_never_answers_is_not_restarted_forever() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--",
            "sh",
            "-c",
            "echo 'No such script: nope.py' >&2; exit 3",
        ])
        .current_dir(dir.path())
        .env("GATEHOUSE_DATABASE__URL", format!("sqlite://{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exited before it ever answered"), "{stderr}");
    assert!(stderr.contains("No such script: nope.py"), "the app's own output passes through: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn with_a_shared_password_there_is_no_setup_link_and_the_password_alone_signs_in() {
    // The file holds a hash from `gatehouse hash`, as an operator would keep it.
    let dir = tempfile::tempdir().unwrap();
    let hash = gatehouse::auth::password::hash_blocking("team password 42").unwrap();
    let file = dir.path().join("shared-password");
    std::fs::write(&file, format!("{hash}\n")).unwrap();
    let file = file.display().to_string();
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        env: &[("GATEHOUSE_PASSWORD__SHARED_FILE", &file)],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let signed_in = gatehouse.sign_in("", "team password 42").await;
    let page = signed_in.client.get(gatehouse.url("/")).header("cookie", &signed_in.session).send().await.unwrap();
    assert_eq!(page.status(), 200, "the app, signed in with the password alone");
    gatehouse.stop();
    let output = stdout_of(&mut gatehouse);
    assert!(output.contains("Sign-in is by the shared password"), "{output}");
    assert!(output.contains("Mail is not sent: messages (reset links, codes) are written to"), "{output}");
    assert!(!output.contains("setup?token="), "no setup link: {output}");
}
