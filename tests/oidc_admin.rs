//! Running the OpenID Connect provider: signing-key rotation and algorithms, `gatehouse clients` and
//! `gatehouse keys`, and what `check-config` says about clients.

mod common;

use common::oidc::*;
use common::{Clock, TestGatehouse};
use gatehouse::domain::oidc::SigningAlgorithm;
use serde_json::Value;

#[tokio::test]
async fn rotated_keys_stay_published_until_their_tokens_expire() {
    let server = provider_on(None, "oidc.id_token_lifetime = \"10m\"\n").await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let first: Value = exchange(&server, &code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await, None)
        .await
        .json()
        .await
        .unwrap();
    let old_token = first["id_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();

    let rotated =
        gatehouse::oidc::keys::rotate(server.store(), SigningAlgorithm::Rs256, server.clock.now()).await.unwrap();
    let second: Value = exchange(&server, &code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await, None)
        .await
        .json()
        .await
        .unwrap();
    let new_token = second["id_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(new_token).unwrap().kid.unwrap(), rotated.kid);
    assert!(verify_id_token(&server, &old_token, "app").await.is_ok(), "the old key is still published");
    assert!(verify_id_token(&server, new_token, "app").await.is_ok());

    server.clock.advance(time::Duration::seconds(16 * 60));
    let kids: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![rotated.kid.clone()], "the old key ({old_kid}) is gone once its tokens expired");
}

#[tokio::test]
async fn es256_and_eddsa_are_selectable() {
    for algorithm in ["ES256", "EdDSA"] {
        let server = provider_on(None, &format!("oidc.signing_algorithm = \"{algorithm}\"\n")).await;
        let mut browser = server.signed_in("olivia", "correct horse battery").await;
        let code = code_for(&mut browser, &authorize_path("app", REDIRECT, &[])).await;
        let tokens: Value = exchange(&server, &code, None).await.json().await.unwrap();
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(format!("{:?}", jsonwebtoken::decode_header(token).unwrap().alg), algorithm);
        let claims = verify_id_token(&server, token, "app").await.unwrap();
        assert_eq!(claims["preferred_username"], "olivia");
    }
}

#[tokio::test]
async fn clients_from_the_cli_sign_people_in_until_removed() {
    let cli = common::cli::Cli::new();
    cli.ok(&["migrate"], None);
    let added = cli.json(&[
        "clients",
        "add",
        "reports",
        "--redirect-uri",
        REDIRECT,
        "--first-party",
        "--name",
        "Reports",
        "--json",
    ]);
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);
    let public = cli.json(&["clients", "add", "desk", "--redirect-uri", REDIRECT, "--public", "--json"]);
    let remote = cli.run(&["clients", "add", "wiki", "--redirect-uri", "http://wiki.internal/oauth2callback"], None);
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("warning: http://wiki.internal/oauth2callback is plain http")
    );
    cli.ok(&["clients", "remove", "wiki"], None);
    assert!(public["client_secret"].is_null());
    let listed = cli.ok(&["clients", "list"], None);
    assert!(listed.contains("reports  (confidential, first-party; database)"), "{listed}");
    assert!(!listed.contains(&secret), "the secret is never shown again");
    let json = cli.json(&["clients", "list", "--json"]);
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(!json.to_string().contains(&secret));
    // Bad input: exit code 2 with a message.
    for args in [
        vec!["clients", "add", "reports", "--redirect-uri", REDIRECT],
        vec!["clients", "add", "x y", "--redirect-uri", REDIRECT],
        vec!["clients", "add", "z", "--redirect-uri", "not a url"],
        vec!["clients", "remove", "nobody"],
    ] {
        let output = cli.run(&args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }

    let server = TestGatehouse::start_on(Some(cli.db_url()), None, "").await;
    server.add_user("olivia", "correct horse battery", &[]).await;
    let mut browser = server.signed_in("olivia", "correct horse battery").await;
    let code = code_for(&mut browser, &authorize_path("reports", REDIRECT, &[])).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens = token_request(&server, Some(("reports", &secret)), &form).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();

    cli.ok(&["clients", "remove", "reports"], None);
    assert_eq!(userinfo(&server, tokens["access_token"].as_str().unwrap()).await.status(), 401);
    let refresh = token_request(
        &server,
        Some(("reports", &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(refresh.status(), 401);

    // `keys rotate` from the shell: the running server signs with the new key at once.
    let before: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    let rotated = cli.ok(&["keys", "rotate"], None);
    let after: Vec<String> = jwks(&server).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(after.len(), before.len() + 1, "{rotated}");
    assert!(after.iter().any(|kid| rotated.contains(kid.as_str()) && !before.contains(kid)), "{rotated}");
    let listed = cli.ok(&["keys", "list"], None);
    assert_eq!(listed.matches("current").count(), 1, "{listed}");
    assert_eq!(cli.run(&["keys", "rotate", "--algorithm", "HS256"], None).status.code(), Some(2));
}

#[test]
fn check_config_lists_clients_and_warns_about_plain_http_redirects() {
    let cli = common::cli::Cli::new();
    cli.ok(&["users", "add", "olivia", "--role", "finance", "--password-stdin"], Some("correct horse battery"));
    let secret = cli.write("secret", "0123456789abcdef0123456789abcdef\n");
    let config = cli.write(
        "gatehouse.toml",
        &format!(
            r#"
[[oidc.clients]]
client_id = "reports"
client_secret_file = "{secret}"
redirect_uris = ["http://reports.example.com/oauth2callback"]
[[oidc.clients]]
client_id = "laptop"
redirect_uris = ["http://localhost:8502/oauth2callback"]
first_party = true
allowed_roles = ["finanse", "finance"]
"#
        ),
    );
    let output = cli.run(&["check-config", "--config", &config], None);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.contains("oidc issuer http://127.0.0.1:8501/_gatehouse (RS256)"), "{stdout}");
    assert!(stdout.contains("oidc client reports (confidential) -> http://reports.example.com/oauth2callback"));
    assert!(stdout.contains("oidc client laptop (public, first-party)"), "{stdout}");
    assert!(stderr.contains("client 'reports' returns to http://reports.example.com/oauth2callback over plain http"));
    assert!(!stderr.contains("'laptop'"), "loopback redirects are fine: {stderr}");
    assert!(stderr.contains("no account holds the role 'finanse' named in [[oidc.clients]] (a typo?)"), "{stderr}");
    assert!(!stderr.contains("'finance'"), "olivia holds finance: {stderr}");

    let inline = cli.write(
        "inline.toml",
        "[[oidc.clients]]\nclient_id = \"x\"\nclient_secret = \"hunter2\"\nredirect_uris = [\"https://x.example/cb\"]\n",
    );
    let output = cli.run(&["check-config", "--config", &inline], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("oidc.clients[0]") && stderr.contains("client_secret_file"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}
