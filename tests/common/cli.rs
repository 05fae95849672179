//! The `gatehouse` binary run as a real process against a database in a temporary folder, for the CLI tests.

use std::io::Write;
use std::process::{Command, Output, Stdio};

pub struct Cli {
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cli.db").display())
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_DATABASE__URL", self.db_url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args, None)).unwrap()
    }
}

impl Cli {
    /// Writes a file into the folder and returns its path.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// `users list --json`.
    pub fn users(&self) -> Vec<serde_json::Value> {
        self.json(&["users", "list", "--json"]).as_array().unwrap().clone()
    }
}
