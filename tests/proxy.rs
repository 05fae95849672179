//! The proxy path: identity headers (and their spoofing), forwarded headers, streaming bodies, WebSocket
//! tunnelling, upstream failures, forward-auth, and the absence of the 44 ms keep-alive stall.

mod common;

use std::time::{Duration, Instant};

use common::upstream::{closed_port, start_echo_upstream, start_nagle_upstream};
use common::{Clock, TestGatehouse, echoed_header};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "correct horse battery";

async fn gatehouse_with_alice() -> TestGatehouse {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst", "admin"]).await;
    gatehouse
}

use common::websocket::{closes_within, open_stream};

#[tokio::test]
async fn identity_headers_reach_the_app_and_spoofed_ones_never_do() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let report = browser
        .echo(
            "/page?x=1",
            &[
                ("X-GATEHOUSE-USER", "mallory"),
                ("x-Gatehouse-Roles", "superuser"),
                ("X-Gatehouse-Anything", "forged"),
                ("Remote-User", "mallory"),
                ("X-Forwarded-User", "mallory"),
                ("x-forwarded-email", "mallory@evil.example"),
                ("X-Auth-Name", "mallory"),
                ("X_Gatehouse_Roles", "admin"),
                ("Remote_User", "mallory"),
                ("Forwarded", "for=6.6.6.6"),
                ("X-Real-IP", "6.6.6.6"),
            ],
        )
        .await;
    assert_eq!(report["path"], "/page?x=1");
    assert_eq!(echoed_header(&report, "x-gatehouse-user"), vec!["alice"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-email"), vec!["alice@example.com"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-name"), vec!["Alice Example"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-roles"), vec!["admin,analyst"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-logged-in"), vec!["true"]);
    assert!(echoed_header(&report, "x-gatehouse-anything").is_empty());
    for alias in [
        "remote-user",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-auth-name",
        "x_gatehouse_roles",
        "remote_user",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(echoed_header(&report, alias).is_empty(), "{alias} reached the app");
    }
    let assertion = echoed_header(&report, "x-gatehouse-assertion");
    assert_eq!(assertion.len(), 1);
    assert_eq!(assertion[0].split('.').count(), 3, "the assertion is a JWT");
}

#[tokio::test]
async fn the_assertion_verifies_with_the_published_key_and_carries_the_identity() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let report = browser.echo("/", &[]).await;
    let token = echoed_header(&report, "x-gatehouse-assertion").remove(0);
    let key = jsonwebtoken::DecodingKey::from_ed_components(&gatehouse.state.assertions.public_key_b64()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["gatehouse"]);
    validation.set_audience(&[format!("http://{}", gatehouse.addr)]);
    validation.validate_exp = false; // the test clock is not the wall clock jsonwebtoken reads
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "analyst"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
}

#[tokio::test]
async fn gatehouse_cookies_and_hop_by_hop_headers_are_not_forwarded() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    browser.cookies.insert("_streamlit_xsrf".into(), "app-cookie".into());
    let report = browser
        .echo("/", &[("connection", "keep-alive, x-hop"), ("x-hop", "1"), ("te", "trailers"), ("x-end", "2")])
        .await;
    let cookies = echoed_header(&report, "cookie").join(";");
    assert!(cookies.contains("_streamlit_xsrf=app-cookie"), "the app's own cookie must arrive: {cookies}");
    assert!(!cookies.contains("gatehouse_session") && !cookies.contains("gatehouse_csrf"), "{cookies}");
    assert!(echoed_header(&report, "x-hop").is_empty());
    assert!(echoed_header(&report, "te").is_empty());
    assert_eq!(echoed_header(&report, "x-end"), vec!["2"]);
}

#[tokio::test]
async fn forwarded_headers_are_set_and_host_is_kept() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let report = browser.echo("/", &[("x-forwarded-for", "10.9.9.9"), ("x-forwarded-proto", "https")]).await;
    assert_eq!(
        echoed_header(&report, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "an untrusted client cannot claim an address"
    );
    assert_eq!(echoed_header(&report, "x-forwarded-proto"), vec!["http"]);
    assert_eq!(echoed_header(&report, "x-forwarded-host"), vec![gatehouse.addr.to_string()]);
    assert_eq!(echoed_header(&report, "host"), vec![gatehouse.addr.to_string()], "Host keeps its port");
    assert_eq!(echoed_header(&report, "x-request-id").len(), 1);
}

#[tokio::test]
async fn the_apps_own_errors_and_headers_pass_through_untouched() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let response = browser.get("/status/404").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.unwrap(), "from the app");
    let response = browser.get("/echo").await;
    assert_eq!(response.headers()["x-upstream"], "echo");
}

#[tokio::test]
async fn response_bodies_stream_without_buffering() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let started = Instant::now();
    let mut response =
        browser.client.get(browser.url("/stream")).header("cookie", browser.cookie_header()).send().await.unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    let first_after = started.elapsed();
    assert_eq!(&first[..], b"first chunk;");
    assert!(
        first_after < Duration::from_millis(500),
        "first chunk held back for {first_after:?}: the body was buffered"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second chunk");
}

#[tokio::test]
async fn request_bodies_stream_to_the_app() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(vec![b'a'; 1000])).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    // The app answers after the first chunk; if Gatehouse waited for the whole body this would time out,
    // because the rest is only sent after the answer arrives.
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        browser.client.post(browser.url("/first-chunk")).header("cookie", browser.cookie_header()).body(body).send(),
    )
    .await
    .expect("the request body was buffered")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "first chunk: 1000 bytes");
    drop(tx);

    // A large upload arrives whole.
    let big = vec![7u8; 8 * 1024 * 1024];
    let response = browser
        .client
        .post(browser.url("/count"))
        .header("cookie", browser.cookie_header())
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), (8 * 1024 * 1024).to_string());
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled_with_headers_unchanged_and_identity_added() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let mut request = format!("ws://{}/_stcore/stream", gatehouse.addr).into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", browser.cookie_header().parse().unwrap());
    headers.insert("origin", format!("http://{}", gatehouse.addr).parse().unwrap());
    headers.insert("sec-websocket-protocol", "streamlit, xsrf-token-value".parse().unwrap());
    headers.insert("x-gatehouse-user", "mallory".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "streamlit");

    let first = socket.next().await.unwrap().unwrap();
    let received: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    let report = serde_json::json!({ "headers": received });
    assert_eq!(echoed_header(&report, "x-gatehouse-user"), vec!["alice"]);
    assert_eq!(echoed_header(&report, "x-gatehouse-email"), vec!["alice@example.com"]);
    assert_eq!(echoed_header(&report, "sec-websocket-protocol"), vec!["streamlit, xsrf-token-value"]);
    assert_eq!(echoed_header(&report, "origin"), vec![format!("http://{}", gatehouse.addr)]);
    assert_eq!(echoed_header(&report, "host"), vec![gatehouse.addr.to_string()]);
    assert_eq!(echoed_header(&report, "upgrade"), vec!["websocket"]);

    socket.send(Message::text("ping over the tunnel")).await.unwrap();
    let echoed = socket.next().await.unwrap().unwrap();
    assert_eq!(echoed.to_text().unwrap(), "ping over the tunnel");
}

#[tokio::test]
async fn websocket_without_a_session_is_refused() {
    let gatehouse = gatehouse_with_alice().await;
    let request = format!("ws://{}/_stcore/stream", gatehouse.addr).into_client_request().unwrap();
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected HTTP 401, got {other:?}"),
    }
}

#[tokio::test]
async fn signing_out_closes_the_sessions_open_websockets() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let mut socket = open_stream(&gatehouse, &browser).await;
    assert_eq!(gatehouse.state.sessions.revocations().live_count(), 1);

    browser.sign_out().await;
    assert!(closes_within(&mut socket, Duration::from_secs(1)).await, "the WebSocket stayed open after sign-out");
}

#[tokio::test]
async fn websockets_close_when_the_session_ends_elsewhere() {
    // Disabling through the store directly is what `gatehouse users disable` in a shell does: this server
    // is not told, and must notice by itself.
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let mut socket = open_stream(&gatehouse, &browser).await;
    let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    gatehouse.store().set_disabled(&alice.id, true, gatehouse.clock.now()).await.unwrap();
    assert!(closes_within(&mut socket, Duration::from_secs(2)).await, "the WebSocket of a disabled user stayed open");
    assert_eq!(gatehouse.state.sessions.revocations().live_count(), 0);
}

#[tokio::test]
async fn upstream_down_gives_a_branded_502_page_or_json() {
    let gatehouse = TestGatehouse::start(Some(closed_port().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let page = browser.get("/").await;
    assert_eq!(page.status(), 502);
    let request_id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("App unavailable") && html.contains(&request_id), "{html}");
    assert!(html.contains("/_gatehouse/static/gatehouse.css"));
    // Its own icon, so the browser does not ask the app (or get a 401) for /favicon.ico.
    assert!(html.contains("<link rel=\"icon\" href=\"/_gatehouse/static/favicon.svg\""), "{html}");
    let icon = gatehouse.browser().get("/_gatehouse/static/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));

    let api = browser.api_get("/api").await;
    assert_eq!(api.status(), 502);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unavailable");
}

#[tokio::test]
async fn upstream_timeout_gives_504() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), "upstream.timeout = \"1s\"\n").await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let response = browser.get("/slow").await;
    assert_eq!(response.status(), 504);
    assert!(response.text().await.unwrap().contains("App timed out"));
}

#[tokio::test]
async fn forward_auth_answers_200_with_identity_or_401() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let ok = browser
        .client
        .get(browser.url("/_gatehouse/auth"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-gatehouse-user"], "alice");
    assert_eq!(ok.headers()["x-gatehouse-roles"], "admin,analyst");
    let anonymous = browser.client.get(browser.url("/_gatehouse/auth")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// Streamlit leaves Nagle on and writes head and body separately; through a keep-alive connection every
/// request after the first would wait ~40 ms for a delayed ACK. Twenty requests on one connection would
/// then take at least 760 ms; through Gatehouse they must not stall.
#[tokio::test]
async fn reused_upstream_connections_do_not_stall_on_delayed_acks() {
    let gatehouse = TestGatehouse::start(Some(start_nagle_upstream().await)).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let cookie = browser.cookie_header();
    // Warm up the connection pool.
    for _ in 0..3 {
        browser
            .client
            .get(browser.url("/health"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let started = Instant::now();
    for _ in 0..20 {
        let response = browser.client.get(browser.url("/health")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(400),
        "20 keep-alive requests took {elapsed:?}: the delayed-ACK stall is back"
    );
}

#[tokio::test]
async fn the_app_cannot_set_gatehouse_cookies() {
    let gatehouse = gatehouse_with_alice().await;
    let mut browser = gatehouse.signed_in("alice", PASSWORD).await;
    let response = browser.get("/set-cookie").await;
    let set: Vec<_> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set, vec!["app_pref=dark; Path=/"]);
}

#[tokio::test]
async fn a_second_planted_session_cookie_is_not_trusted() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    let cookie = format!("gatehouse_session={}; {}", "A".repeat(43), browser.cookie_header());
    let response = browser
        .client
        .get(browser.url("/"))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn only_websocket_upgrades_are_tunnelled() {
    let gatehouse = gatehouse_with_alice().await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    // An h2c upgrade is proxied as an ordinary request with the Upgrade header dropped.
    let response = browser
        .client
        .get(browser.url("/plain"))
        .header("cookie", browser.cookie_header())
        .header("connection", "upgrade")
        .header("upgrade", "h2c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    assert!(echoed_header(&report, "upgrade").is_empty());
}
