//! `gatehouse run` as a real process supervising a real child, for the tests of run mode and of isolation:
//! start it in a temporary folder, watch its health, add a user with the CLI and sign in over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RunningGatehouse {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for RunningGatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What a run looks like: the app's shell command, extra environment (configuration), where stderr goes.
#[derive(Default)]
pub struct RunOptions<'a> {
    pub app: &'a str,
    pub env: &'a [(&'a str, &'a str)],
    /// `None`: discarded; else a file in the run's folder.
    pub log_file: Option<&'a str>,
    /// Users (name, password) added with the CLI before Gatehouse starts.
    pub users: &'a [(&'a str, &'a str)],
    /// Administrators (name, password), added the same way with the `admin` role.
    pub admins: &'a [(&'a str, &'a str)],
    /// Signals Gatehouse inherits as ignored (as under `nohup`, or as a script's background job).
    pub ignored_signals: &'a [i32],
}

impl RunningGatehouse {
    /// `gatehouse run -- sh -c APP` in a fresh folder with its own database.
    pub fn start(app: &str) -> Self {
        Self::start_with(RunOptions { app, ..Default::default() })
    }

    pub fn start_with(options: RunOptions<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (username, password) in options.users {
            add_user(dir.path(), username, password, &[]);
        }
        for (username, password) in options.admins {
            add_user(dir.path(), username, password, &["--role", "admin"]);
        }
        let port = free_port();
        let stderr = match options.log_file {
            Some(name) => Stdio::from(std::fs::File::create(dir.path().join(name)).unwrap()),
            None => Stdio::null(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        let ignored = options.ignored_signals.to_vec();
        // SAFETY: signal(2) only, between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                for signal in &ignored {
                    libc::signal(*signal, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        let child = command
            .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--", "sh", "-c", options.app])
            .current_dir(dir.path())
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_DATABASE__URL", database_url(dir.path()))
            .envs(options.env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        RunningGatehouse { child, port, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn health(&self) -> Option<serde_json::Value> {
        let response = reqwest::get(self.url("/_gatehouse/health")).await.ok()?;
        response.json().await.ok()
    }

    /// Polls until the upstream status is `wanted`, or fails after `limit`.
    pub async fn wait_for_upstream(&self, wanted: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(body) = self.health().await
                && body["upstream"]["status"] == wanted
            {
                return;
            }
            assert!(started.elapsed() < limit, "upstream never became {wanted:?} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in over HTTP; returns the session cookie (`name=value`) and the CSRF values used on the way.
    pub async fn sign_in(&self, username: &str, password: &str) -> SignedIn {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let login =
            client.get(self.url("/_gatehouse/login?rd=%2Fsecret-path%3Ftoken%3Dquery-secret")).send().await.unwrap();
        let csrf_cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = login.text().await.unwrap();
        let csrf_token = super::extract_csrf(&html);
        let body =
            serde_urlencoded::to_string([("username", username), ("password", password), ("csrf_token", &csrf_token)])
                .unwrap();
        let signed_in = client
            .post(self.url("/_gatehouse/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &csrf_cookie)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 303);
        let session = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        SignedIn { client, session, csrf_cookie, csrf_token }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        self.child.wait().unwrap()
    }
}

pub struct SignedIn {
    pub client: reqwest::Client,
    /// `gatehouse_session=...`
    pub session: String,
    pub csrf_cookie: String,
    pub csrf_token: String,
}

impl SignedIn {
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).header("cookie", &self.session).send().await.unwrap()
    }
}

/// Adds a user with the CLI, before the server starts (two processes creating one database race).
fn add_user(dir: &Path, username: &str, password: &str, extra: &[&str]) {
    let added = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["users", "add", username, "--password-stdin"])
        .args(extra)
        .env("GATEHOUSE_DATABASE__URL", database_url(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(password.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(added.success());
}

pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("run.db").display())
}

/// Polls `condition` every 20 ms until it holds, or fails after `limit` saying `what`.
pub async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
