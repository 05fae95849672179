//! The `gatehouse` command line, run as a real process: user management, hashing, migrations and
//! configuration checking, with their exit codes (0 ok, 1 failure, 2 bad usage or configuration).

mod common;

use std::process::{Command, Output};

use common::cli::Cli;

use gatehouse::auth::password::{Verification, verify_blocking};

/// `gatehouse check-config --config PATH`, with the environment the test runs in.
fn check_config(path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .output()
        .unwrap()
}

fn exit_code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

#[test]
fn users_are_managed_end_to_end() {
    let cli = Cli::new();
    cli.ok(
        &[
            "users",
            "add",
            "alice",
            "--email",
            "Alice@Example.com",
            "--name",
            "Alice Example",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    cli.ok(&["users", "add", "bob", "--password-stdin"], Some("another good password"));

    let list = cli.json(&["users", "list", "--json"]);
    let names: Vec<_> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, vec!["alice", "bob"]);
    assert!(list.to_string().find("password").is_none(), "password hashes never leave through the CLI");

    let alice = cli.json(&["users", "show", "alice", "--json"]);
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["display_name"], "Alice Example");
    assert_eq!(alice["roles"], serde_json::json!(["analyst"]));
    assert_eq!(alice["disabled"], false);

    let table = cli.ok(&["users", "list"], None);
    assert!(table.starts_with("USERNAME") && table.contains("alice@example.com"), "{table}");

    cli.ok(&["users", "roles", "alice", "--add", "admin", "--remove", "analyst"], None);
    assert_eq!(cli.json(&["users", "show", "alice", "--json"])["roles"], serde_json::json!(["admin"]));

    // The shell obeys the console's rule: the last administrator cannot be disabled, demoted or deleted.
    for refused in [vec!["users", "disable", "alice"], vec!["users", "roles", "alice", "--remove", "admin"]] {
        let output = cli.run(&refused, None);
        assert_eq!(exit_code(&output), 2, "{refused:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("last administrator"), "{refused:?}");
    }
    cli.ok(&["users", "roles", "bob", "--add", "admin"], None);
    cli.ok(&["users", "disable", "alice"], None);
    assert_eq!(cli.json(&["users", "show", "alice", "--json"])["disabled"], true);
    cli.ok(&["users", "enable", "alice"], None);
    assert_eq!(cli.json(&["users", "show", "alice", "--json"])["disabled"], false);

    cli.ok(&["users", "passwd", "alice", "--password-stdin"], Some("a brand new passphrase\n"));
    cli.ok(&["users", "delete", "bob"], None);
    let missing = cli.run(&["users", "show", "bob"], None);
    assert_eq!(exit_code(&missing), 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user called 'bob'"));
}

#[tokio::test]
async fn cli_changes_are_stored_hashed_and_audited() {
    let cli = Cli::new();
    cli.ok(&["users", "add", "alice", "--password-stdin"], Some("correct horse battery\n"));
    cli.ok(&["users", "passwd", "alice", "--password-stdin"], Some("a brand new passphrase"));
    cli.ok(&["users", "disable", "alice"], None);
    let store = gatehouse::store::open(&cli.db_url()).await.unwrap();
    let alice = store.user_by_login("alice").await.unwrap().unwrap();
    let hash = alice.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert_eq!(verify_blocking("a brand new passphrase", &hash), Verification::Valid { needs_rehash: false });
    let events = store.list_audit(&Default::default()).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["user_disabled", "password_changed", "user_created"]);
    assert!(events.iter().all(|e| e.actor.as_deref() == Some("cli")));
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let cli = Cli::new();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec!["users", "add", "bad name", "--password-stdin"], Some("long enough pw"), "username"),
        (
            vec!["users", "add", "carol", "--email", "not-an-email", "--password-stdin"],
            Some("long enough pw"),
            "not a valid email",
        ),
        (vec!["users", "add", "carol", "--password-stdin"], Some("short"), "at least 8 characters"),
        (vec!["users", "add", "carol", "--password-stdin"], Some("carol"), "at least 8"),
        (vec!["users", "add", "carol", "--password-stdin"], Some(""), "empty"),
        (
            vec!["users", "add", "carol", "--role", "a,b", "--password-stdin"],
            Some("long enough pw"),
            "not a valid role",
        ),
        (vec!["users", "add", "carol"], None, "--password-stdin"),
        (vec!["users", "frobnicate"], None, "unrecognized subcommand"),
        (vec!["run"], None, "required"),
    ];
    for (args, stdin, expected) in cases {
        let output = cli.run(&args, stdin);
        assert_eq!(exit_code(&output), 2, "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    cli.ok(&["users", "add", "carol", "--password-stdin"], Some("long enough pw"));
    let duplicate = cli.run(&["users", "add", "Carol", "--password-stdin"], Some("long enough pw"));
    assert_eq!(exit_code(&duplicate), 2);
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("username is already taken"));
}

#[test]
fn hash_prints_a_verifiable_argon2id_string() {
    let cli = Cli::new();
    let hash = cli.ok(&["hash"], Some("hunter2 but longer\n"));
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert_eq!(verify_blocking("hunter2 but longer", hash), Verification::Valid { needs_rehash: false });
    // A hash hides the length from every later check: a short password is refused here.
    let short = cli.run(&["hash"], Some("abc\n"));
    assert_eq!(exit_code(&short), 2);
    assert!(String::from_utf8_lossy(&short.stderr).contains("shorter than 8 characters"));
}

#[test]
fn migrate_creates_the_schema() {
    let cli = Cli::new();
    let out = cli.ok(&["migrate"], None);
    assert!(out.contains("up to date"));
    assert!(cli.dir.path().join("cli.db").exists());
}

#[test]
fn check_config_lists_every_problem_with_its_origin() {
    let cli = Cli::new();
    let path = cli.dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"not-an-address\"\ncolor = \"red\"\n[session]\nidle_timeout = \"soon\"\n[database]\nurl = \"mysql://x\"\n",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    let output = command
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env_remove("GATEHOUSE_DATABASE__URL")
        .env("GATEHOUSE_UPSTREAM__TIMEOUT", "often")
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "server.listen",
        "server.color: unknown key",
        "session.idle_timeout",
        "database.url",
        "upstream.timeout",
        "from environment variable GATEHOUSE_UPSTREAM__TIMEOUT",
        path.to_str().unwrap(),
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }

    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9000\"\n[database]\npassword_file = \"/nonexistent\"\n")
        .unwrap();
    let output = check_config(&path);
    assert_eq!(exit_code(&output), 2);

    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
    let output = check_config(&path);
    assert_eq!(exit_code(&output), 0, "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("127.0.0.1:9000"));
    // It tries whether `run` could isolate the app here (this machine allows it).
    assert!(stdout.contains("isolation   auto: `run` gives the app a private network here"), "{stdout}");
    // How people get in, and whether mail reaches anyone.
    assert!(stdout.contains("sign-in     accounts (username or email, and password)"), "{stdout}");
    assert!(stdout.contains("signup      closed: administrators create accounts"), "{stdout}");
    assert!(stdout.contains("mail        not sent: written to the outbox folder gatehouse-outbox"), "{stdout}");

    std::fs::write(
        &path,
        "[signup]\nmode = \"open\"\nallowed_email_domains = [\"example.com\"]\n[mail]\nsmtp_url = \"smtp://mail.example.com:587\"\nfrom = \"Apps <apps@example.com>\"\n[password]\nshared = \"team password 42\"\n",
    )
    .unwrap();
    let output = check_config(&path);
    assert_eq!(exit_code(&output), 0, "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("signup      open: addresses at example.com may register, addresses verified by mail"),
        "{stdout}"
    );
    assert!(stdout.contains("mail        SMTP mail.example.com:587 from Apps <apps@example.com>"), "{stdout}");
    assert!(stdout.contains("sign-in     one shared password"), "{stdout}");
    assert!(!stdout.contains("team password 42"), "the password itself is never printed: {stdout}");

    std::fs::write(&path, "[upstream]\nisolation = \"sometimes\"\n").unwrap();
    let output = check_config(&path);
    assert_eq!(exit_code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("upstream.isolation"));

    let missing = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check-config", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(exit_code(&missing), 2);
}

#[test]
fn db_copy_moves_an_installation_and_refuses_bad_targets() {
    let cli = Cli::new();
    cli.ok(&["users", "add", "alice", "--role", "admin", "--password-stdin"], Some("correct horse battery"));
    let target = format!("sqlite://{}", cli.dir.path().join("copy.db").display());

    let output = cli.ok(&["db", "copy", "--from", &cli.db_url(), "--to", &target], None);
    assert!(output.contains("users            1"), "{output}");
    assert!(output.contains("user_roles       1"), "{output}");
    let copied = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["users", "list", "--json"])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE__URL", &target)
        .output()
        .unwrap();
    let users: serde_json::Value = serde_json::from_slice(&copied.stdout).unwrap();
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["roles"][0], "admin");

    // Copying again finds the target not empty: refused as bad usage, and nothing changes.
    let again = cli.run(&["db", "copy", "--from", &cli.db_url(), "--to", &target], None);
    assert_eq!(exit_code(&again), 2);
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    let same = cli.run(&["db", "copy", "--from", &cli.db_url(), "--to", &cli.db_url()], None);
    assert_eq!(exit_code(&same), 2);
    let unknown = cli.run(&["db", "copy", "--from", "mysql://db/x", "--to", &target], None);
    assert_eq!(exit_code(&unknown), 2);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not a database URL"));
}

#[test]
fn a_shared_password_that_cannot_be_used_stops_the_start_with_exit_code_2() {
    let cli = Cli::new();
    let empty = cli.write("empty.txt", "\n");
    let output = cli.run(&["serve", "--listen", "127.0.0.1:1", "--shared-password-file", &empty], None);
    assert_eq!(exit_code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the shared password is empty"), "{output:?}");
    assert!(stderr.contains("can be read by other users of this machine; chmod 600 it"), "{stderr}");
    let output = cli.run(&["serve", "--listen", "127.0.0.1:1", "--shared-password-file", "/nonexistent/file"], None);
    assert_eq!(exit_code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read '/nonexistent/file'"), "{output:?}");

    // Somebody's own account named 'shared' is never taken over.
    cli.ok(&["users", "add", "shared", "--password-stdin"], Some("someone's own password\n"));
    let file = cli.write("shared.txt", "team password 42\n");
    let output = cli.run(&["serve", "--listen", "127.0.0.1:1", "--shared-password-file", &file], None);
    assert_eq!(exit_code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("a user named 'shared' already exists"), "{output:?}");
}

#[test]
fn a_secrets_toml_top_level_password_becomes_the_shared_password() {
    let cli = Cli::new();
    let secrets = cli.write("secrets.toml", "# Streamlit's first recipe\npassword = \"streamlit123\"\n");
    let dry = cli.ok(&["users", "import", &secrets, "--format", "secrets-toml", "--dry-run"], None);
    assert!(dry.contains("would make the file's top-level password the shared password"), "{dry}");
    assert!(cli.users().is_empty(), "a dry run writes nothing");
    let done = cli.ok(&["users", "import", &secrets, "--format", "secrets-toml"], None);
    assert!(done.contains("is now the shared password"), "{done}");
    let users = cli.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["username"], "shared");
    let again = cli.ok(&["users", "import", &secrets, "--format", "secrets-toml"], None);
    assert!(again.contains("the shared password was already this one"), "{again}");
}
