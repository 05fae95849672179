//! Naming the app and wearing its colours (issue 15, items 3 and 4): `[server] app_name` on the pages, the
//! error pages and in mail, `[theme] primary_color` as a stylesheet, `[theme] logo` served and shown, and
//! the links administrators get to the console. What `gatehouse run` reads from the app itself is tested in
//! `supervisor::app_brand` and tests/e2e/test_branding.py.

mod common;

use common::TestGatehouse;
use common::upstream::start_echo_upstream;

const PASSWORD: &str = "correct horse battery";
const SVG: &str =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>";

async fn branded() -> TestGatehouse {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.svg");
    std::fs::write(&logo, SVG).unwrap();
    let gatehouse = TestGatehouse::start_with(
        Some(start_echo_upstream().await),
        &format!(
            "server.app_name = \"Fleet <status>\"\ntheme.primary_color = \"#1E88E5\"\ntheme.logo = \"{}\"\n",
            logo.display()
        ),
    )
    .await;
    // The logo was read at start: the file may go.
    drop(dir);
    gatehouse
}

#[tokio::test]
async fn the_pages_name_the_app_and_wear_its_colour_and_logo() {
    let gatehouse = branded().await;
    let mut browser = gatehouse.browser();
    let login = browser.get("/_gatehouse/login").await.text().await.unwrap();
    assert!(login.contains("Sign in to continue to <strong>Fleet &lt;status&gt;</strong>."), "{login}");
    assert!(login.contains("<title>Sign in · Fleet &lt;status&gt;</title>"), "{login}");
    assert!(login.contains("<link rel=\"stylesheet\" href=\"/_gatehouse/static/theme.css\">"));
    assert!(login.contains("<img class=\"brand-logo\" src=\"/_gatehouse/static/logo\" alt=\"Fleet &lt;status&gt;\">"));

    let theme = browser.get("/_gatehouse/static/theme.css").await;
    assert_eq!(theme.status(), 200);
    assert_eq!(theme.headers()["content-type"], "text/css; charset=utf-8");
    let css = theme.text().await.unwrap();
    assert!(css.contains("--primary: #1e88e5;") && css.contains("--on-primary: #ffffff;"), "{css}");

    let logo = browser.get("/_gatehouse/static/logo").await;
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
    // Served with Gatehouse's own security headers: an SVG opened on its own cannot run script.
    let csp = logo.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none';") && !csp.contains("script-src"), "{csp}");
    assert_eq!(logo.text().await.unwrap(), SVG);

    // Error pages too.
    let missing = browser.get("/_gatehouse/no-such-page").await.text().await.unwrap();
    assert!(missing.contains("· Fleet &lt;status&gt;</title>"), "{missing}");
}

#[tokio::test]
async fn without_a_theme_the_pages_keep_their_own() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    let login = browser.get("/_gatehouse/login").await.text().await.unwrap();
    assert!(login.contains("Sign in to continue to the app."), "{login}");
    assert!(login.contains("<title>Sign in · Gatehouse</title>") && !login.contains("None"), "{login}");
    assert!(!login.contains("theme.css") && !login.contains("brand-logo"));
    assert_eq!(browser.get("/_gatehouse/static/theme.css").await.status(), 404);
    assert_eq!(browser.get("/_gatehouse/static/logo").await.status(), 404);
}

#[tokio::test]
async fn a_theme_that_is_not_a_colour_or_a_logo_that_is_not_an_image_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("logo.txt");
    std::fs::write(&text, "not an image").unwrap();
    let toml = format!(
        "[theme]\nprimary_color = \"red; }} body {{ display: none\"\nlogo = \"{}\"\n[server]\napp_name = \"\"\n",
        text.display()
    );
    let problems = gatehouse::config::Config::from_toml_str(&toml).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["server.app_name", "theme.logo", "theme.primary_color"], "{problems:?}");
}

#[tokio::test]
async fn administrators_find_the_console_from_their_account_page_and_the_sign_out_page() {
    let gatehouse = branded().await;
    gatehouse.add_user("root", PASSWORD, &["admin"]).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    for (username, admin) in [("root", true), ("alice", false)] {
        let mut browser = gatehouse.signed_in(username, PASSWORD).await;
        for page in ["/_gatehouse/account", "/_gatehouse/logout"] {
            let html = browser.get(page).await.text().await.unwrap();
            assert_eq!(
                html.contains("href=\"/_gatehouse/admin\">Admin console</a>"),
                admin,
                "{username} {page}: {html}"
            );
            assert!(html.contains("Back to Fleet &lt;status&gt;"), "{page}: {html}");
        }
    }
}
