//! Open tabs follow their session (issue 15, item 1): the tab script added to the app's pages, the
//! `/_gatehouse/session/live` channel it listens on (ended, ending with "Stay signed in", extended), the
//! Streamlit WebSocket that is use only when it carries data frames, and the sentence Streamlit shows when
//! its reconnect pings are refused. The browser side is tests/e2e/test_open_tabs.py.

mod common;

use std::time::Duration as StdDuration;

use futures_util::{SinkExt, StreamExt};
use time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use common::upstream::start_echo_upstream;
use common::websocket::{Socket, closes_within, open_stream};
use common::{Browser, TestGatehouse};

const PASSWORD: &str = "correct horse battery";

async fn gatehouse_with_alice(extra_toml: &str) -> (TestGatehouse, Browser) {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), extra_toml).await;
    gatehouse.add_user("alice", PASSWORD, &[]).await;
    let browser = gatehouse.signed_in("alice", PASSWORD).await;
    (gatehouse, browser)
}

/// Opens the session channel as the tab script does (same origin, the browser's cookies).
async fn follow(gatehouse: &TestGatehouse, browser: &Browser) -> Socket {
    let origin = format!("http://{}", gatehouse.addr);
    tokio_tungstenite::connect_async(live_request(gatehouse, browser, &[("origin", &origin)])).await.unwrap().0
}

/// The session channel's handshake with the browser's cookies and `extra` headers.
fn live_request(
    gatehouse: &TestGatehouse,
    browser: &Browser,
    extra: &[(&'static str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/_gatehouse/session/live", gatehouse.addr).into_client_request().unwrap();
    let headers = request.headers_mut();
    for (name, value) in extra {
        headers.insert(*name, value.parse().unwrap());
    }
    if !browser.cookie_header().is_empty() {
        headers.insert("cookie", browser.cookie_header().parse().unwrap());
    }
    request
}

/// The next status message, within `limit`.
async fn next_status(socket: &mut Socket, limit: StdDuration) -> serde_json::Value {
    let read = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("the channel closed without a status: {other:?}"),
            }
        }
    };
    tokio::time::timeout(limit, read).await.expect("a status in time")
}

#[tokio::test]
async fn a_tab_hears_at_once_that_its_session_was_ended_elsewhere_and_the_apps_websocket_closes() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    let mut channel = follow(&gatehouse, &browser).await;
    let first = next_status(&mut channel, StdDuration::from_secs(1)).await;
    assert_eq!(first["state"], "signed_in");
    assert_eq!(first["extendable"], true);
    assert_eq!(first["primary"], serde_json::Value::Null, "no [theme]: the script keeps its own colour");
    let ends_in = first["ends_in"].as_i64().unwrap();
    assert!((12 * 3600 - 5..=12 * 3600).contains(&ends_in), "the idle timeout is 12 h: {first}");
    let mut app_socket = open_stream(&gatehouse, &browser).await;

    // Signed out in another tab of the same browser.
    let mut other_tab = browser.clone();
    other_tab.sign_out().await;
    let ended = next_status(&mut channel, StdDuration::from_secs(1)).await;
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["reason"], "ended", "ended by someone, not by time: {ended}");
    assert!(closes_within(&mut channel, StdDuration::from_secs(1)).await);
    assert!(closes_within(&mut app_socket, StdDuration::from_secs(1)).await);
}

#[tokio::test]
async fn a_disabled_user_and_a_changed_password_end_the_tabs_too() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    let mut channel = follow(&gatehouse, &browser).await;
    next_status(&mut channel, StdDuration::from_secs(1)).await;
    let alice = gatehouse.store().user_by_login("alice").await.unwrap().unwrap();
    gatehouse.state.sessions.end_all_for_user(&alice.id).await.unwrap();
    assert_eq!(next_status(&mut channel, StdDuration::from_secs(1)).await["state"], "ended");
}

#[tokio::test]
async fn without_a_session_the_tab_is_told_to_sign_in() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut channel = follow(&gatehouse, &gatehouse.browser()).await;
    assert_eq!(next_status(&mut channel, StdDuration::from_secs(1)).await["state"], "ended");
}

#[tokio::test]
async fn stay_signed_in_is_offered_before_the_idle_timeout_and_restarts_it() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    let mut channel = follow(&gatehouse, &browser).await;
    assert_eq!(next_status(&mut channel, StdDuration::from_secs(1)).await["state"], "signed_in");

    // 90 s before the 12 h idle timeout: inside the 2-minute warning.
    gatehouse.clock.advance(Duration::hours(12) - Duration::seconds(90));
    let ending = next_status(&mut channel, StdDuration::from_secs(2)).await;
    assert_eq!(ending["state"], "ending", "{ending}");
    assert_eq!(ending["extendable"], true);
    assert!((85..=90).contains(&ending["ends_in"].as_i64().unwrap()), "{ending}");

    channel.send(Message::text("stay")).await.unwrap();
    let extended = next_status(&mut channel, StdDuration::from_secs(1)).await;
    assert_eq!(extended["state"], "signed_in", "{extended}");
    assert!(extended["ends_in"].as_i64().unwrap() > 11 * 3600, "{extended}");

    // Nobody uses the tab after that: it idles out, and the app's WebSocket closes with it.
    let mut app_socket = open_stream(&gatehouse, &browser).await;
    gatehouse.clock.advance(Duration::hours(12));
    let mut states = Vec::new();
    let mut last = serde_json::Value::Null;
    while states.last() != Some(&"ended".to_owned()) {
        last = next_status(&mut channel, StdDuration::from_secs(2)).await;
        states.push(last["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(last["reason"], "idle", "the sign-in page can say why: {last}");
    assert!(closes_within(&mut app_socket, StdDuration::from_secs(1)).await, "states seen: {states:?}");
    let mut browser = browser;
    assert_eq!(browser.get("/").await.status(), 303, "the session is over");
}

#[tokio::test]
async fn following_a_session_does_not_keep_it_alive() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    let mut channel = follow(&gatehouse, &browser).await;
    next_status(&mut channel, StdDuration::from_secs(1)).await;
    for _ in 0..4 {
        gatehouse.clock.advance(Duration::hours(3) + Duration::minutes(1));
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    let mut last = serde_json::Value::Null;
    while last["state"] != "ended" {
        last = next_status(&mut channel, StdDuration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn an_apps_websocket_is_use_only_when_the_tab_sends_data_not_pongs() {
    for (sends_data, survives) in [(true, true), (false, false)] {
        let (gatehouse, browser) = gatehouse_with_alice("").await;
        let mut app_socket = open_stream(&gatehouse, &browser).await;
        for _ in 0..3 {
            gatehouse.clock.advance(Duration::hours(5));
            let message = if sends_data { Message::text("rerun") } else { Message::Pong(b"alive".to_vec().into()) };
            app_socket.send(message).await.unwrap();
            // Longer than the re-check (200 ms in tests), which counts the use.
            tokio::time::sleep(StdDuration::from_millis(600)).await;
        }
        // 15 h after sign-in, 5 h after the last message: alive only if the messages counted as use.
        let mut channel = follow(&gatehouse, &browser).await;
        let state = next_status(&mut channel, StdDuration::from_secs(1)).await;
        assert_eq!(state["state"] == "signed_in", survives, "data frames: {sends_data}: {state}");
    }
}

#[tokio::test]
async fn another_site_cannot_follow_or_extend_the_session() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    for (origin, site) in [("http://evil.example", "cross-site"), ("null", "cross-site")] {
        let request = live_request(&gatehouse, &browser, &[("origin", origin), ("sec-fetch-site", site)]);
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!("{origin}: expected 403, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_signed_in_page_load_gets_the_tab_script_and_nothing_else_does() {
    let (gatehouse, mut browser) = gatehouse_with_alice("").await;
    let page = browser
        .get_with(
            "/html-page",
            &[("sec-fetch-dest", "document"), ("accept-encoding", "gzip, br"), ("if-none-match", "\"app-etag\"")],
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("etag").is_none(), "the app's validator no longer describes the page");
    assert!(page.headers().get("content-encoding").is_none());
    let length: usize = page.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let html = page.text().await.unwrap();
    assert_eq!(html.len(), length);
    assert!(
        html.contains("<head><script src=\"/_gatehouse/static/session.js\" defer></script>\n    <title>App</title>"),
        "{html}"
    );
    assert!(
        !html.contains("accept-encoding") && !html.contains("if-none-match"),
        "asked uncompressed, in full: {html}"
    );

    // The script itself is served to anyone (it holds nothing secret).
    let script = gatehouse.browser().get("/_gatehouse/static/session.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("/_gatehouse/session/live"));

    // A frame, a fetch, or a page the app compresses all pass untouched.
    for extra in [vec![("sec-fetch-dest", "iframe")], vec![("sec-fetch-dest", "empty"), ("sec-fetch-mode", "cors")]] {
        let html = browser.get_with("/html-page", &extra).await.text().await.unwrap();
        assert!(!html.contains("session.js"), "{extra:?}: {html}");
    }
}

#[tokio::test]
async fn the_tab_script_can_be_turned_off() {
    let (_gatehouse, mut browser) = gatehouse_with_alice("session.follow_open_tabs = false\n").await;
    let html = browser.get_with("/html-page", &[("sec-fetch-dest", "document")]).await.text().await.unwrap();
    assert!(!html.contains("session.js"), "{html}");
}

#[tokio::test]
async fn streamlits_refused_reconnect_pings_read_as_a_sentence_not_json() {
    let gatehouse = TestGatehouse::start(Some(start_echo_upstream().await)).await;
    let mut browser = gatehouse.browser();
    for path in ["/_stcore/health", "/_stcore/host-config", "/app/_stcore/health"] {
        // As Streamlit's frontend asks: fetch() with its default Accept.
        let response = browser.get_with(path, &[("sec-fetch-mode", "cors"), ("accept", "*/*")]).await;
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(response.text().await.unwrap(), "You are signed out. Reload this page to sign in again.");
    }
    // An API client asking for JSON still gets JSON, on those paths too.
    let response = browser.api_get("/_stcore/health").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "unauthorized");
}

#[tokio::test]
async fn stay_is_honoured_only_while_offered_and_a_flood_is_cut_off() {
    let (gatehouse, browser) = gatehouse_with_alice("").await;
    let mut channel = follow(&gatehouse, &browser).await;
    next_status(&mut channel, StdDuration::from_secs(1)).await;
    // An hour later nothing is offered yet: "stay" changes nothing (it would be a store write each time).
    gatehouse.clock.advance(Duration::hours(1));
    channel.send(Message::text("stay")).await.unwrap();
    let mut second = follow(&gatehouse, &browser).await;
    let ends_in = next_status(&mut second, StdDuration::from_secs(1)).await["ends_in"].as_i64().unwrap();
    assert!(ends_in <= 11 * 3600, "the idle timer was not restarted: {ends_in}");
    // A tab that sends far more than a person could is disconnected.
    for _ in 0..40 {
        if channel.send(Message::text("stay")).await.is_err() {
            break;
        }
    }
    assert!(closes_within(&mut channel, StdDuration::from_secs(2)).await, "a flood is cut off");
}

#[tokio::test]
async fn the_offer_wears_the_apps_colour() {
    let (gatehouse, browser) = gatehouse_with_alice("theme.primary_color = \"#2E7D32\"\n").await;
    let mut channel = follow(&gatehouse, &browser).await;
    let first = next_status(&mut channel, StdDuration::from_secs(1)).await;
    assert_eq!(first["primary"], "#2e7d32");
    assert_eq!(first["on_primary"], "#ffffff");
}
