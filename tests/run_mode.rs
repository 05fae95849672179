//! `gatehouse run` as a real process supervising a real child: the child gets `$PORT`, requests wait on a
//! "starting" page until it answers, a crashed child is restarted, and SIGTERM stops both cleanly.
//! The child is Python's built-in HTTP server (Python is already needed for the Streamlit tests).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct RunningGatehouse {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for RunningGatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(app: &str) -> RunningGatehouse {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--", "sh", "-c", app])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE__URL", format!("sqlite://{}", dir.path().join("run.db").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    RunningGatehouse { child, port, _dir: dir }
}

async fn health(port: u16) -> Option<serde_json::Value> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/_gatehouse/health")).await.ok()?;
    response.json().await.ok()
}

/// Polls until `condition` holds for the upstream status, or fails after `limit`.
async fn wait_for_upstream(port: u16, wanted: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Some(body) = health(port).await
            && body["upstream"]["status"] == wanted
        {
            return;
        }
        assert!(started.elapsed() < limit, "upstream never became {wanted:?} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const SLOW_APP: &str = "env > app-env.txt; sleep 3; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1";

#[tokio::test]
async fn the_child_gets_port_and_the_proxy_waits_for_it() {
    let gatehouse = start(SLOW_APP);
    wait_for_upstream(gatehouse.port, "starting", Duration::from_secs(10)).await;
    // While the app starts, health says so with 503.
    let response = reqwest::get(format!("http://127.0.0.1:{}/_gatehouse/health", gatehouse.port)).await.unwrap();
    assert_eq!(response.status(), 503);
    wait_for_upstream(gatehouse.port, "ok", Duration::from_secs(20)).await;
    let env = std::fs::read_to_string(gatehouse._dir.path().join("app-env.txt")).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PORT=")), "{env}");
    assert!(env.contains("GATEHOUSE_ASSERTION_PUBLIC_KEY="));
    assert!(!env.contains("GATEHOUSE_DATABASE__URL"), "Gatehouse's own settings leaked into the app's environment");
}

#[tokio::test]
async fn a_dead_child_is_restarted() {
    // Serves for two seconds, then dies; Gatehouse must bring it back.
    let gatehouse = start("python3 -m http.server \"$PORT\" --bind 127.0.0.1 & pid=$!; sleep 2; kill $pid");
    wait_for_upstream(gatehouse.port, "ok", Duration::from_secs(20)).await;
    wait_for_upstream(gatehouse.port, "starting", Duration::from_secs(10)).await;
    wait_for_upstream(gatehouse.port, "ok", Duration::from_secs(20)).await;
}

#[tokio::test]
async fn sigterm_stops_gatehouse_and_the_child() {
    let mut gatehouse = start("exec python3 -m http.server \"$PORT\" --bind 127.0.0.1");
    wait_for_upstream(gatehouse.port, "ok", Duration::from_secs(20)).await;
    let pid = nix::unistd::Pid::from_raw(gatehouse.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = gatehouse.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "gatehouse did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(health(gatehouse.port).await.is_none(), "still listening after exit");
}

#[tokio::test]
async fn a_first_run_prints_the_setup_link() {
    let mut gatehouse = start(SLOW_APP);
    wait_for_upstream(gatehouse.port, "starting", Duration::from_secs(10)).await;
    let pid = nix::unistd::Pid::from_raw(gatehouse.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let output = gatehouse.child.wait_with_output_ref();
    assert!(output.contains(&format!("http://127.0.0.1:{}/_gatehouse/setup?token=", gatehouse.port)), "{output}");
}

trait OutputRef {
    fn wait_with_output_ref(&mut self) -> String;
}

impl OutputRef for Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut text = String::new();
        if let Some(stdout) = self.stdout.as_mut() {
            let _ = stdout.read_to_string(&mut text);
        }
        text
    }
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
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let db = format!("sqlite://{}", dir.path().join("logs.db").display());
        let password = "Sup3r-secret-passphrase";
        let add = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["users", "add", "alice", "--password-stdin"])
            .env("GATEHOUSE_DATABASE__URL", &db)
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(password.as_bytes())?;
                child.wait()
            })
            .unwrap();
        assert!(add.success());
        let log_path = dir.path().join("gatehouse.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--", "sh", "-c"])
            .arg("exec python3 -m http.server \"$PORT\" --bind 127.0.0.1 2>/dev/null")
            .current_dir(dir.path())
            .env("GATEHOUSE_DATABASE__URL", &db)
            .env("GATEHOUSE_LOG__FORMAT", format)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        wait_for_upstream(port, "ok", Duration::from_secs(20)).await;

        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let login = client
            .get(format!("{base}/_gatehouse/login?rd=%2Fsecret-path%3Ftoken%3Dquery-secret"))
            .send()
            .await
            .unwrap();
        let csrf_cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = login.text().await.unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let csrf_token = html[start..].split('"').next().unwrap().to_owned();
        let body =
            serde_urlencoded::to_string([("username", "alice"), ("password", password), ("csrf_token", &csrf_token)])
                .unwrap();
        let signed_in = client
            .post(format!("{base}/_gatehouse/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &csrf_cookie)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 303);
        let session = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let proxied =
            client.get(format!("{base}/?token=query-secret")).header("cookie", &session).send().await.unwrap();
        assert_eq!(proxied.status(), 200);

        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        child.wait().unwrap();
        let logs = std::fs::read_to_string(&log_path).unwrap();
        assert!(logs.contains("signed in"), "{format} logs lack the sign-in line:\n{logs}");
        let session_token = session.split_once('=').unwrap().1;
        let csrf_value = csrf_cookie.split_once('=').unwrap().1;
        for secret in [password, session_token, csrf_value, csrf_token.as_str(), "query-secret"] {
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
