//! `gatehouse users import`, `export` and `invite`, run as real processes against a database that a test
//! server then uses: imported users sign in with their old passwords (and bcrypt hashes are upgraded), one bad
//! row stops an import with its line number and nothing written, and exports round-trip.

mod common;

use common::TestGatehouse;
use common::cli::Cli;
use common::upstream::start_echo_upstream;

const PASSWORD: &str = "correct horse battery";

/// A server on the CLI's database; sign-ins prove the imported passwords work.
async fn server(cli: &Cli) -> TestGatehouse {
    TestGatehouse::start_on(Some(cli.db_url()), Some(start_echo_upstream().await), "").await
}

fn bcrypt_2y(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap().replacen("$2b$", "$2y$", 1)
}

#[tokio::test]
async fn htpasswd_users_sign_in_with_their_old_passwords_and_get_argon2id() {
    let cli = Cli::new();
    let file = cli.write(
        "users.htpasswd",
        &format!("# exported\nalice:{}\nbob:{}\n", bcrypt_2y(PASSWORD), bcrypt_2y("other one")),
    );
    let stdout = cli.ok(&["users", "import", &file, "--format", "htpasswd"], None);
    assert!(stdout.contains("imported: 2 created"), "{stdout}");
    let server = server(&cli).await;
    assert_eq!(server.browser().sign_in("alice", PASSWORD, false).await.status(), 303);
    assert_eq!(server.browser().sign_in("bob", PASSWORD, false).await.status(), 401);
    let alice = server.store().user_by_login("alice").await.unwrap().unwrap();
    assert!(alice.password_hash.unwrap().starts_with("$argon2id$"), "bcrypt is upgraded at the first sign-in");
}

#[tokio::test]
async fn streamlit_authenticator_configs_keep_names_roles_and_hashes() {
    let cli = Cli::new();
    let yaml = format!(
        "cookie:\n  expiry_days: 30\n  key: some_signature_key\n  name: some_cookie_name\ncredentials:\n  usernames:\n    \
         jsmith:\n      email: jsmith@gmail.com\n      failed_login_attempts: 0\n      first_name: John\n      last_name: Smith\n      \
         logged_in: false\n      password: {}\n      roles:\n      - admin\n      - editor\n    rbriggs:\n      \
         email: rbriggs@gmail.com\n      name: Rebecca Briggs\n      password: plain text pass\npre-authorized:\n  emails:\n  - melsby@gmail.com\n",
        bcrypt::hash(PASSWORD, 4).unwrap()
    );
    let file = cli.write("config.yaml", &yaml);
    let output = cli.run(&["users", "import", &file, "--format", "streamlit-authenticator"], None);
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("1 password(s) in the file are plaintext"), "{stderr}");
    assert!(stderr.contains("pre-authorized"), "{stderr}");
    let users = cli.users();
    let john = users.iter().find(|u| u["username"] == "jsmith").unwrap();
    assert_eq!(john["display_name"], "John Smith");
    assert_eq!(john["roles"], serde_json::json!(["admin", "editor"]));
    let server = server(&cli).await;
    assert_eq!(server.browser().sign_in("jsmith", PASSWORD, false).await.status(), 303);
    assert_eq!(server.browser().sign_in("rbriggs@gmail.com", "plain text pass", false).await.status(), 303);
}

#[tokio::test]
async fn secrets_toml_passwords_are_hashed() {
    let cli = Cli::new();
    let file = cli.write(
        "secrets.toml",
        "[passwords]\n# Follow the rule: username = \"password\"\nalice_foo = \"streamlit123\"\n",
    );
    cli.ok(&["users", "import", &file, "--format", "secrets-toml"], None);
    let server = server(&cli).await;
    let user = server.store().user_by_login("alice_foo").await.unwrap().unwrap();
    assert!(user.password_hash.as_deref().unwrap().starts_with("$argon2id$"), "stored hashed, never as given");
    assert_eq!(server.browser().sign_in("alice_foo", "streamlit123", false).await.status(), 303);
}

#[tokio::test]
async fn one_bad_row_stops_the_import_with_its_line_and_nothing_written() {
    let cli = Cli::new();
    let file = cli.write(
        "users.csv",
        "username,email,name,roles,password\nann,ann@example.com,Ann,,first pass one\nben,ben@example.com,Ben,,x\ncat,not-an-address,Cat,,x\n",
    );
    let output = cli.run(&["users", "import", &file, "--format", "csv"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("line 4") && stderr.contains("not-an-address"), "{stderr}");
    assert!(cli.users().is_empty(), "nothing was written");

    // A duplicate address and a hash that cannot be verified are refused the same way.
    let file = cli.write("dup.csv", "username,email\nann,a@example.com\nben,A@example.com\n");
    let stderr = String::from_utf8(cli.run(&["users", "import", &file, "--format", "csv"], None).stderr).unwrap();
    assert!(stderr.contains("line 3"), "{stderr}");
    let file = cli.write("md5.htpasswd", "ann:$apr1$abc$def\n");
    let output = cli.run(&["users", "import", &file, "--format", "htpasswd"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(cli.users().is_empty());
}

#[tokio::test]
async fn dry_runs_write_nothing_and_existing_users_are_skipped_unless_updated() {
    let cli = Cli::new();
    let file = cli.write("users.csv", "username,email,name\nann,ann@example.com,Ann\n");
    let stdout = cli.ok(&["users", "import", &file, "--format", "csv", "--dry-run"], None);
    assert!(stdout.contains("would create 1") && stdout.contains("nothing was written"), "{stdout}");
    assert!(cli.users().is_empty());
    cli.ok(&["users", "import", &file, "--format", "csv"], None);

    let file =
        cli.write("again.csv", "username,email,name\nann,ann@new.example,Ann Updated\nbea,bea@example.com,Bea\n");
    let stdout = cli.ok(&["users", "import", &file, "--format", "csv"], None);
    assert!(stdout.contains("1 created, 0 updated, 1 skipped"), "{stdout}");
    assert_eq!(cli.users().iter().find(|u| u["username"] == "ann").unwrap()["email"], "ann@example.com");
    let stdout = cli.ok(&["users", "import", &file, "--format", "csv", "--update"], None);
    assert!(stdout.contains("0 created, 2 updated"), "{stdout}");
    let ann = cli.users().into_iter().find(|u| u["username"] == "ann").unwrap();
    assert_eq!((ann["email"].as_str(), ann["display_name"].as_str()), (Some("ann@new.example"), Some("Ann Updated")));
}

#[tokio::test]
async fn exports_leave_hashes_out_unless_asked_and_import_elsewhere() {
    let cli = Cli::new();
    let file = cli.write("users.htpasswd", &format!("alice:{}\n", bcrypt_2y(PASSWORD)));
    cli.ok(&["users", "import", &file, "--format", "htpasswd"], None);
    let json = cli.ok(&["users", "export", "--format", "json"], None);
    assert!(!json.contains("$2y$") && !json.contains("password_hash"), "{json}");
    let csv = cli.ok(&["users", "export", "--format", "csv", "--with-hashes"], None);
    assert!(csv.starts_with("username,email,name,roles,disabled") && csv.contains("$2y$"), "{csv}");

    let other = Cli::new();
    let file = other.write("export.csv", &csv);
    other.ok(&["users", "import", &file, "--format", "csv"], None);
    let server = server(&other).await;
    assert_eq!(server.browser().sign_in("alice", PASSWORD, false).await.status(), 303);
}

#[tokio::test]
async fn invitations_from_the_cli_print_the_link_and_write_the_mail() {
    let cli = Cli::new();
    let stdout = cli.ok(&["users", "invite", "Guest@Example.com", "--role", "viewer"], None);
    let link = stdout.lines().last().unwrap();
    assert!(link.contains("/_gatehouse/register?invite="), "{stdout}");
    let outbox = common::mail::Outbox::new(cli.dir.path().join("gatehouse-outbox"));
    let mail = outbox.next("guest@example.com", "invite").await;
    assert!(link.ends_with(&mail.link_path()), "{link} vs {}", mail.link_path());
    let output = cli.run(&["users", "invite", "not-an-address"], None);
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn updates_keep_what_the_file_does_not_have_and_disabled_accounts_stay_disabled() {
    let cli = Cli::new();
    let csv = "username,email,name,roles,disabled\nadmin,admin@example.com,The Admin,admin,false\ngone,gone@example.com,Left Us,,true\n";
    let file = cli.write("users.csv", csv);
    cli.ok(&["users", "import", &file, "--format", "csv"], None);
    // An htpasswd file has only names and hashes: --update sets the hash and keeps the rest.
    let file = cli.write("users.htpasswd", &format!("admin:{}\n", bcrypt_2y(PASSWORD)));
    cli.ok(&["users", "import", &file, "--format", "htpasswd", "--update"], None);
    let users = cli.users();
    let admin = users.iter().find(|u| u["username"] == "admin").unwrap();
    assert_eq!(admin["roles"], serde_json::json!(["admin"]));
    assert_eq!(
        (admin["email"].as_str(), admin["display_name"].as_str()),
        (Some("admin@example.com"), Some("The Admin"))
    );
    assert_eq!(users.iter().find(|u| u["username"] == "gone").unwrap()["disabled"], true);
    let server = server(&cli).await;
    assert_eq!(server.browser().sign_in("admin", PASSWORD, false).await.status(), 303);

    // An export of it imports elsewhere with the disabled account still disabled.
    let exported = cli.ok(&["users", "export", "--format", "csv"], None);
    let other = Cli::new();
    let file = other.write("export.csv", &exported);
    other.ok(&["users", "import", &file, "--format", "csv"], None);
    assert_eq!(other.users().iter().find(|u| u["username"] == "gone").unwrap()["disabled"], true);
}

#[tokio::test]
async fn hashes_that_would_stall_the_server_are_refused() {
    let cli = Cli::new();
    let heavy = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$20$", 1);
    let file = cli.write("heavy.htpasswd", &format!("ok:{}\nheavy:{heavy}\n", bcrypt_2y(PASSWORD)));
    let output = cli.run(&["users", "import", &file, "--format", "htpasswd"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("line 2") && stderr.contains("cost 20"), "{stderr}");
    assert!(cli.users().is_empty());
}
