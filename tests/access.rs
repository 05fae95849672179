//! `[[access]]` rules on the proxy path and at the forward-auth endpoint: allowed, denied with a 403 that names
//! the role, public paths without a session (and without identity headers), host rules, and paths written to
//! slip past a rule. `check-config` reports overlaps and unknown roles.

mod common;

use common::cli::Cli;
use common::upstream::start_echo_upstream;
use common::{TestGatehouse, echoed_header};

const PASSWORD: &str = "correct horse battery";

const RULES: &str = r#"
[[access]]
path = "/_stcore/health"
public = true

[[access]]
path = "/static"
public = true

[[access]]
path = "/admin"
roles = ["admin"]

[[access]]
host = "reports.example.com"
path = "/"
roles = ["analyst", "admin"]
"#;

async fn gatehouse_with_rules() -> TestGatehouse {
    // Arrays of tables after the dotted keys the harness writes.
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), RULES).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    gatehouse.add_user("root", PASSWORD, &["admin"]).await;
    gatehouse.add_user("victor", PASSWORD, &["viewer"]).await;
    gatehouse
}

#[tokio::test]
async fn role_rules_let_holders_in_and_tell_others_which_role_is_needed() {
    let gatehouse = gatehouse_with_rules().await;
    let mut root = gatehouse.signed_in("root", PASSWORD).await;
    let mut alice = gatehouse.signed_in("alice", PASSWORD).await;

    assert_eq!(root.get("/admin/settings").await.status(), 200);
    assert_eq!(alice.get("/admin").await.status(), 403);
    let denied = alice.get("/admin/settings?x=1").await;
    assert_eq!(denied.status(), 403);
    let html = denied.text().await.unwrap();
    assert!(html.contains("signed in as alice") && html.contains("needs the role &#x27;admin&#x27;"), "{html}");
    assert!(html.contains("Sign in as someone else"), "{html}");
    let api = alice.api_get("/admin/data.json").await;
    assert_eq!(api.status(), 403);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "role_required");

    // Segment-wise prefixes: /administrator is not under /admin.
    assert_eq!(alice.get("/administrator").await.status(), 200);
    // Anything else needs only a session.
    assert_eq!(alice.get("/").await.status(), 200);
    assert_eq!(gatehouse.browser().get("/admin").await.status(), 303, "no session: sign in first");
}

#[tokio::test]
async fn paths_written_to_dodge_a_rule_are_judged_as_the_app_reads_them() {
    let gatehouse = gatehouse_with_rules().await;
    let mut alice = gatehouse.signed_in("alice", PASSWORD).await;
    for sneaky in ["/static/../admin", "/%61dmin", "//admin", "/static/%2e%2e/admin", "/./admin"] {
        assert_eq!(alice.get(sneaky).await.status(), 403, "{sneaky}");
        assert_ne!(gatehouse.browser().get(sneaky).await.status(), 200, "{sneaky} must not be public");
    }
}

#[tokio::test]
async fn public_paths_need_no_session_and_carry_no_identity() {
    let gatehouse = gatehouse_with_rules().await;
    let mut anonymous = gatehouse.browser();
    let report = anonymous.echo("/_stcore/health", &[("x-gatehouse-user", "forged")]).await;
    assert!(echoed_header(&report, "x-gatehouse-user").is_empty(), "forged identity is stripped: {report}");
    assert!(echoed_header(&report, "x-gatehouse-assertion").is_empty());
    let report = anonymous.echo("/static/app.js", &[]).await;
    assert_eq!(report["path"], "/static/app.js");
    assert_eq!(anonymous.get("/staticfile").await.status(), 303, "not under /static");

    // A signed-in user on a public path: the app still learns who it is.
    let mut alice = gatehouse.signed_in("alice", PASSWORD).await;
    let report = alice.echo("/static/app.js", &[]).await;
    assert_eq!(echoed_header(&report, "x-gatehouse-user"), vec!["alice"]);
}

#[tokio::test]
async fn host_rules_apply_to_their_host_only() {
    let gatehouse = gatehouse_with_rules().await;
    let mut alice = gatehouse.signed_in("alice", PASSWORD).await;
    let mut victor = gatehouse.signed_in("victor", PASSWORD).await;
    let reports = [("host", "reports.example.com")];
    assert_eq!(alice.get_with("/dashboard", &reports).await.status(), 200);
    assert_eq!(victor.get_with("/dashboard", &reports).await.status(), 403);
    assert_eq!(victor.get_with("/dashboard", &[("host", "reports.example.com:8443")]).await.status(), 403);
    assert_eq!(victor.get("/dashboard").await.status(), 200, "other hosts: any signed-in user");
    // The host rule is more specific than the public /static rule for every host.
    assert_eq!(victor.get_with("/static/x.css", &reports).await.status(), 403);
}

#[tokio::test]
async fn forward_auth_applies_the_rules_to_the_original_request() {
    let gatehouse = gatehouse_with_rules().await;
    let alice = gatehouse.signed_in("alice", PASSWORD).await;
    let client = reqwest::Client::new();
    let ask = |uri: &'static str, cookie: Option<String>| {
        let mut request = client.get(gatehouse.url("/_gatehouse/auth")).header("x-original-uri", uri);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    assert_eq!(ask("/admin/x", Some(alice.cookie_header())).await.unwrap().status(), 403);
    let ok = ask("/reports", Some(alice.cookie_header())).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-gatehouse-user"], "alice");
    let public = ask("/_stcore/health", None).await.unwrap();
    assert_eq!(public.status(), 200);
    assert!(public.headers().get("x-gatehouse-user").is_none());
    assert_eq!(ask("/reports", None).await.unwrap().status(), 401);
    // Traefik and Caddy name the path in X-Forwarded-Uri.
    let traefik = client
        .get(gatehouse.url("/_gatehouse/auth"))
        .header("x-forwarded-uri", "/admin")
        .header("cookie", alice.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(traefik.status(), 403);
}

#[test]
fn check_config_lists_rules_and_warns_about_overlaps_and_unknown_roles() {
    let cli = Cli::new();
    cli.ok(&["users", "add", "alice", "--role", "analyst", "--password-stdin"], Some("correct horse battery"));
    let config = cli.write(
        "gatehouse.toml",
        r#"
[[access]]
path = "/reports"
roles = ["analyst"]

[[access]]
path = "/reports/public"
public = true

[[access]]
path = "/finance"
roles = ["acountant"]
"#,
    );
    let output = cli.run(&["check-config", "--config", &config], None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("/reports -> roles: analyst") && stdout.contains("/reports/public -> public"), "{stdout}");
    assert!(stderr.contains("warning: /reports/public is inside /reports but less strict"), "{stderr}");
    assert!(stderr.contains("no account holds the role 'acountant'"), "{stderr}");
    assert!(!stderr.contains("'analyst' named"), "analyst is held by alice: {stderr}");

    let broken = cli.write(
        "broken.toml",
        "[[access]]\npath = \"reports\"\n[[access]]\npath = \"/x\"\npublic = true\nroles = [\"a\"]\n",
    );
    let output = cli.run(&["check-config", "--config", &broken], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("access[0]") && stderr.contains("must start with '/'"), "{stderr}");
    assert!(stderr.contains("access[1]") && stderr.contains("both public = true and roles"), "{stderr}");
}
