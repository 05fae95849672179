//! `gatehouse run` against another local user of the machine, a real one: Debian's `nobody`, through
//! `setpriv` (these tests need root, as CI runs them). The attacker (tests/attacker/local_user.py) looks for
//! the app's port in `/proc/net/tcp` and knocks on every listening port with forged identity headers, and
//! binds the app's port the moment the app dies, to serve its own page in Gatehouse's name. Neither works:
//! the app's listener lives in a network of its own. Without that network (`isolation = "off"`), a stranger's
//! listener on the app's port never makes the app "ready". And the app dies with Gatehouse, however
//! Gatehouse dies.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::run::{RunOptions, RunningGatehouse, eventually};

const PASSWORD: &str = "correct horse battery";
const MARKER: &str = "the-real-app-7f3a";
const FAKE: &str = "a-stranger-squatting-the-port";

/// Serves a folder with `marker.txt`, writing its pid and port first (`exec`: the pid is the server's).
const APP: &str = "mkdir -p site && echo the-real-app-7f3a > site/marker.txt && echo $$ > app.pid && echo $PORT > app.port && env > app-env.txt && cd site && exec python3 -m http.server \"$PORT\" --bind 127.0.0.1";

fn require_root() {
    // SAFETY: geteuid(2) cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests act as a second local user with setpriv and need root (CI runs them as root; use sudo)"
    );
}

/// The attacker's script, copied where `nobody` can read it.
fn attacker_script(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("local_user.py");
    std::fs::write(&script, include_str!("attacker/local_user.py")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    script
}

fn as_nobody(script: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"])
        .arg(script)
        .args(args)
        .current_dir("/");
    command
}

fn read_number(path: std::path::PathBuf) -> u32 {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().parse().unwrap()
}

/// Listening TCP sockets on `port` in this (the shared) network.
fn listeners_on(port: u16) -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields[3] == "0A" && u16::from_str_radix(fields[1].rsplit(':').next().unwrap(), 16).unwrap() == port
        })
        .count()
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
}

#[tokio::test]
async fn another_local_user_can_neither_reach_the_app_nor_take_its_port() {
    require_root();
    let gatehouse = RunningGatehouse::start_with(RunOptions {
        app: APP,
        env: &[("GATEHOUSE_UPSTREAM__ISOLATION", "required")],
        log_file: Some("gatehouse.log"),
        users: &[("alice", PASSWORD)],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let app_port = read_number(gatehouse.path("app.port")) as u16;
    let script = attacker_script(gatehouse.dir.path());

    // The app's port is in no network the machine's users share.
    assert_eq!(listeners_on(app_port), 0, "the app listens in the shared network");
    assert!(std::net::TcpStream::connect(("127.0.0.1", app_port)).is_err());

    // The attacker knocks on every listening loopback port with forged identity headers.
    let scan = as_nobody(&script, &["scan", &gatehouse.port.to_string(), MARKER]).output().unwrap();
    assert!(scan.status.success(), "{}", String::from_utf8_lossy(&scan.stderr));
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    assert_eq!(report["uid"], 65534);
    assert_eq!(report["reached"], serde_json::json!([]), "a second user reached the app: {report}");
    assert!(!report["ports"].as_array().unwrap().contains(&serde_json::json!(app_port)));

    // Signed in through Gatehouse, the app is there.
    let alice = gatehouse.sign_in("alice", PASSWORD).await;
    let marker_url = gatehouse.url("/marker.txt");
    assert!(alice.get(&marker_url).await.text().await.unwrap().contains(MARKER));

    // The app crashes; the attacker binds its port at once and answers in its place.
    let app_pid = read_number(gatehouse.path("app.pid"));
    let mut squatter = as_nobody(&script, &["squat", &app_port.to_string(), FAKE, "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(app_pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(squatter.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "bound", "the squatter could not bind the freed port");

    // Until the app is back (after a one-second pause, on a fresh port), nothing of the squatter's shows.
    let started = Instant::now();
    let mut back = false;
    while started.elapsed() < Duration::from_secs(15) {
        let response = alice.get(&marker_url).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(!body.contains(FAKE), "Gatehouse served the squatter's answer ({status})");
        if status == 200 && body.contains(MARKER) && started.elapsed() > Duration::from_millis(500) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the app did not come back");
    let new_port = read_number(gatehouse.path("app.port")) as u16;
    assert_ne!(new_port, app_port, "a restarted app gets a fresh port");
    let _ = squatter.kill();
    let _ = squatter.wait();
}

#[tokio::test]
async fn the_app_dies_with_gatehouse_however_gatehouse_dies() {
    let mut gatehouse = RunningGatehouse::start(
        "python3 -m http.server \"$PORT\" --bind 127.0.0.1 & echo $! > app.pid; sleep 1000 & echo $! > helper.pid; wait",
    );
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let app = read_number(gatehouse.path("app.pid"));
    let helper = read_number(gatehouse.path("helper.pid"));
    assert!(process_alive(app) && process_alive(helper));
    gatehouse.child.kill().unwrap(); // SIGKILL: no chance to clean up
    gatehouse.child.wait().unwrap();
    eventually("the app's processes ending", Duration::from_secs(5), || !process_alive(app) && !process_alive(helper))
        .await;
}

#[tokio::test]
async fn without_a_private_network_a_strangers_listener_never_makes_the_app_ready() {
    require_root();
    // The app binds its port only after a pause, giving the stranger time to take it first.
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "echo $PORT > app.port; sleep 3; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        env: &[("GATEHOUSE_UPSTREAM__ISOLATION", "off")],
        log_file: Some("gatehouse.log"),
        users: &[("alice", PASSWORD)],
        ..Default::default()
    });
    let script = attacker_script(gatehouse.dir.path());
    let port_file = gatehouse.path("app.port");
    // Written by the shell's `echo`: it may exist before its number is in it.
    let written = || std::fs::read_to_string(&port_file).is_ok_and(|text| text.trim().parse::<u32>().is_ok());
    eventually("the app's port file", Duration::from_secs(10), written).await;
    let app_port = read_number(port_file) as u16;
    let mut squatter = as_nobody(&script, &["squat", &app_port.to_string(), FAKE, "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(squatter.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "bound");

    // The stranger answers HTTP on the app's port, but it is not the app's listener: never ready. (The app
    // itself then fails to bind and exits, and Gatehouse, whose app never answered, stops.)
    let alice = gatehouse.sign_in("alice", PASSWORD).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) && gatehouse.child.try_wait().unwrap().is_none() {
        if let Some(health) = gatehouse.health().await {
            assert_ne!(health["upstream"]["status"], "ok", "a stranger's listener made the app ready");
        }
        if let Ok(response) =
            alice.client.get(gatehouse.url("/marker.txt")).header("cookie", &alice.session).send().await
        {
            assert!(!response.text().await.unwrap().contains(FAKE), "Gatehouse served the stranger's answer");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = squatter.kill();
    let _ = squatter.wait();
    let _ = gatehouse.child.kill();
    let _ = gatehouse.child.wait();
    let log = std::fs::read_to_string(gatehouse.path("gatehouse.log")).unwrap();
    assert!(log.contains("something other than the app listens on the app's port"), "{log}");
}

#[tokio::test]
async fn without_a_private_network_an_app_listening_on_every_address_is_stopped() {
    // In the machine's network, 0.0.0.0 is reachable from other machines, past the sign-in wall.
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: "echo $$ > app.pid; exec python3 -m http.server \"$PORT\" --bind 0.0.0.0",
        env: &[("GATEHOUSE_UPSTREAM__ISOLATION", "off")],
        log_file: Some("gatehouse.log"),
        users: &[],
        ..Default::default()
    });
    let exited = Instant::now();
    let status = loop {
        if let Some(status) = gatehouse.child.try_wait().unwrap() {
            break status;
        }
        assert!(exited.elapsed() < Duration::from_secs(20), "Gatehouse kept serving an app open to the network");
        if let Some(health) = gatehouse.health().await {
            assert_ne!(health["upstream"]["status"], "ok", "an app open to the network was called ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(gatehouse.path("gatehouse.log")).unwrap();
    assert!(log.contains("the app listens on 0.0.0.0:"), "{log}");
    assert!(log.contains("where other machines reach it without signing in"), "{log}");
    // And the app itself was stopped, not left open.
    let app = read_number(gatehouse.path("app.pid"));
    eventually("the app to stop", Duration::from_secs(5), || !process_alive(app)).await;
}

/// Serves on 127.0.0.1:$PORT and, once `expose-now` appears, on every address of the same port too
/// (`SO_REUSEPORT` lets one user's two sockets share it).
const APP_EXPOSED_LATER: &str = r#"echo $$ > app.pid; exec python3 -c '
import http.server, os, socket, threading, time
port = int(os.environ["PORT"])
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
def serve(address):
    server = http.server.HTTPServer((address, port), Hello, bind_and_activate=False)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    server.server_bind(); server.server_activate(); server.serve_forever()
threading.Thread(target=serve, args=("127.0.0.1",), daemon=True).start()
while not os.path.exists("expose-now"):
    time.sleep(0.05)
serve("0.0.0.0")
'"#;

#[tokio::test]
async fn without_a_private_network_an_app_that_opens_to_the_network_later_is_stopped() {
    let mut gatehouse = RunningGatehouse::start_with(RunOptions {
        app: APP_EXPOSED_LATER,
        env: &[("GATEHOUSE_UPSTREAM__ISOLATION", "off")],
        log_file: Some("gatehouse.log"),
        users: &[],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    std::fs::write(gatehouse.path("expose-now"), b"").unwrap();
    let exposed = Instant::now();
    let status = loop {
        if let Some(status) = gatehouse.child.try_wait().unwrap() {
            break status;
        }
        assert!(exposed.elapsed() < Duration::from_secs(10), "Gatehouse kept serving an app open to the network");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(gatehouse.path("gatehouse.log")).unwrap();
    assert!(log.contains("the app listens on 0.0.0.0:"), "{log}");
    let app = read_number(gatehouse.path("app.pid"));
    eventually("the app to stop", Duration::from_secs(5), || !process_alive(app)).await;
}

#[tokio::test]
async fn streamlit_learns_the_runs_header_names_only_from_its_environment() {
    let gatehouse = RunningGatehouse::start(APP);
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let env = std::fs::read_to_string(gatehouse.path("app-env.txt")).unwrap();
    let mapping = env
        .lines()
        .find_map(|line| line.strip_prefix("STREAMLIT_SERVER_TRUSTED_USER_HEADERS="))
        .expect("the mapping is in the environment");
    let mapping: serde_json::Value = serde_json::from_str(mapping).unwrap();
    let names: Vec<&String> = mapping.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 5);
    for name in names {
        let secret = name.strip_prefix("x-gatehouse-").unwrap().split('-').next().unwrap();
        assert_eq!(secret.len(), 32, "{name}");
    }
    // Nothing of it on any command line another user can read.
    let app = read_number(gatehouse.path("app.pid"));
    let cmdline = std::fs::read(format!("/proc/{app}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("x-gatehouse"));
}

/// Starts `gatehouse run` under a seccomp filter that refuses `unshare(2)` with EPERM, as Docker's default
/// profile does: the machine then offers no private network.
fn start_without_namespaces(
    isolation: &str,
    log: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
) -> std::process::Child {
    let listen = format!("127.0.0.1:{port}");
    without_namespaces(&["run", "--listen", &listen, "--", "sh", "-c", APP], isolation, log, dir).spawn().unwrap()
}

/// `gatehouse ARGS` under that filter, its stderr in `log`.
fn without_namespaces(args: &[&str], isolation: &str, log: &std::path::Path, dir: &std::path::Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE__URL", common::run::database_url(dir))
        .env("GATEHOUSE_UPSTREAM__ISOLATION", isolation)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    // SAFETY: prctl and seccomp(2) with a program that outlives the call, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
            let equals = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
            let ret = (libc::BPF_RET | libc::BPF_K) as u16;
            let program = [
                libc::sock_filter { code: load, jt: 0, jf: 0, k: 0 },
                libc::sock_filter { code: equals, jt: 0, jf: 1, k: libc::SYS_unshare as u32 },
                libc::sock_filter { code: ret, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32 },
                libc::sock_filter { code: ret, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
            ];
            let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut _ };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
                || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &raw const fprog) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

#[tokio::test]
async fn where_namespaces_are_not_allowed_auto_warns_and_required_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("required.log");
    let status = start_without_namespaces("required", &log, dir.path(), common::run::free_port()).wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("isolation = \"required\"") && text.contains("user and network namespace"), "{text}");
    // The reason reads as one (not a bare errno), and Gatehouse never looked started.
    assert!(text.contains("unprivileged user namespaces are not allowed here"), "{text}");
    assert!(!text.contains("Gatehouse is listening"), "{text}");

    // check-config says so too, and fails, so that a check before deploying catches it.
    let log = dir.path().join("check.log");
    let status = without_namespaces(&["check-config"], "required", &log, dir.path()).status().unwrap();
    assert_eq!(status.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("`gatehouse run` would refuse to start"), "{text}");
    let log = dir.path().join("check-auto.log");
    let status = without_namespaces(&["check-config"], "auto", &log, dir.path()).status().unwrap();
    assert_eq!(status.code(), Some(0), "{}", std::fs::read_to_string(&log).unwrap());

    let port = common::run::free_port();
    let log = dir.path().join("auto.log");
    let mut child = start_without_namespaces("auto", &log, dir.path(), port);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let ready = loop {
        let health = client.get(format!("http://127.0.0.1:{port}/_gatehouse/health")).send().await;
        if let Ok(response) = health
            && response.json::<serde_json::Value>().await.is_ok_and(|body| body["upstream"]["status"] == "ok")
        {
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the app never became ready without isolation");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("THE APP IS NOT ISOLATED"), "{text}");
    // The app is in the shared network now (Gatehouse called it ready after checking its listener).
    assert!(text.contains("private_network=false"), "{text}");
}

/// The processes whose parent is `parent` and whose command line contains `needle`.
fn children_with(parent: u32, needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle)
        })
        .collect()
}

#[tokio::test]
async fn an_app_whose_keeper_dies_is_restarted_with_a_new_one() {
    let gatehouse = RunningGatehouse::start_with(RunOptions {
        app: APP,
        env: &[("GATEHOUSE_UPSTREAM__ISOLATION", "required")],
        log_file: Some("gatehouse.log"),
        users: &[],
        ..Default::default()
    });
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let first_port = read_number(gatehouse.path("app.port"));
    let keepers = children_with(gatehouse.child.id(), "__app-keeper private");
    assert_eq!(keepers.len(), 1, "{keepers:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keepers[0] as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let port_file = gatehouse.path("app.port");
    eventually("a new instance of the app", Duration::from_secs(20), || {
        std::fs::read_to_string(&port_file).is_ok_and(|port| port.trim().parse::<u32>().ok() != Some(first_port))
    })
    .await;
    gatehouse.wait_for_upstream("ok", Duration::from_secs(20)).await;
    let log = std::fs::read_to_string(gatehouse.path("gatehouse.log")).unwrap();
    assert!(log.contains("the app keeper ended unexpectedly"), "{log}");
}
