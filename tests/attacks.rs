//! The attacker's suite: requests written byte for byte the way an attacker would send them, each aimed at a
//! class of way around the sign-in wall or an access rule. What Gatehouse judges must be exactly what it
//! forwards, so every accepted request is also checked on the app's side (the echo upstream reports what
//! it received).

mod common;

use common::raw::{self, RawResponse};
use common::upstream::start_echo_upstream;
use common::{Browser, TestGatehouse, echoed_header};

const PASSWORD: &str = "correct horse battery";

const RULES: &str = r#"
[[access]]
host = "ops.example.com"
path = "/"
roles = ["ops"]

[[access]]
path = "/static"
public = true

[[access]]
path = "/admin"
roles = ["admin"]
"#;

struct Scene {
    gatehouse: TestGatehouse,
    /// Signed in, holds no role that a rule above asks for.
    alice: Browser,
    /// Signed in with `ops` and `admin`.
    root: Browser,
}

async fn scene() -> Scene {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), RULES).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    gatehouse.add_user("root", PASSWORD, &["ops", "admin"]).await;
    let alice = gatehouse.signed_in("alice", PASSWORD).await;
    let root = gatehouse.signed_in("root", PASSWORD).await;
    Scene { gatehouse, alice, root }
}

impl Scene {
    async fn get(&self, who: Option<&Browser>, target: &str, host: &str) -> RawResponse {
        let cookie = who.map(|browser| format!("Cookie: {}", browser.cookie_header()));
        let extra: Vec<&str> = cookie.iter().map(String::as_str).collect();
        raw::get(self.gatehouse.addr, target, Some(host), &extra).await
    }
}

const HOST: &str = "apps.example.com";

#[tokio::test]
async fn a_malformed_host_is_refused_not_judged_by_looser_rules() {
    let scene = scene().await;
    for host in [
        "ops.example.com:abc",
        "ops.example.com:1:2",
        "ops.example.com:+1",
        "ops.example.com.:abc",
        "ops.example.com:80:80",
        "ops.example.com:",
        "ops.example.com:99999",
        "ops.example.com%3a80",
        "user@ops.example.com",
        "ops.example.com, apps.example.com",
        "[::1]x",
    ] {
        // Signed in without `ops`, and anonymous on a path a host-less rule makes public.
        for (who, path) in [(Some(&scene.alice), "/"), (None, "/static/app.js")] {
            let response = scene.get(who, path, host).await;
            // `ops.example.com:` has a canonical form (an empty port goes): it is judged as ops.example.com.
            let expected = if host == "ops.example.com:" { [403, 303] } else { [400, 400] };
            let wanted = if who.is_some() { expected[0] } else { expected[1] };
            assert_eq!(response.status, wanted, "Host: {host} {path}: {}", response.head);
        }
    }
}

#[tokio::test]
async fn the_host_rule_applies_to_every_spelling_of_its_host() {
    let scene = scene().await;
    for host in
        ["ops.example.com", "OPS.Example.COM", "ops.example.com.", "ops.example.com.:8080", "ops.example.com:08080"]
    {
        assert_eq!(scene.get(Some(&scene.alice), "/", host).await.status, 403, "Host: {host}");
        assert_eq!(scene.get(None, "/static/app.js", host).await.status, 303, "Host: {host}");
    }
    // The app gets the canonical host that was judged, in Host and in X-Forwarded-Host.
    let response = scene.get(Some(&scene.root), "/x", "OPS.Example.com.:08080").await;
    assert_eq!(response.status, 200);
    let report = response.json();
    assert_eq!(echoed_header(&report, "host"), ["ops.example.com:8080"]);
    assert_eq!(echoed_header(&report, "x-forwarded-host"), ["ops.example.com:8080"]);
}

#[tokio::test]
async fn one_request_names_one_host() {
    let scene = scene().await;
    let cookie = format!("Cookie: {}", scene.alice.cookie_header());
    let addr = scene.gatehouse.addr;
    // Two Host headers, or an absolute target naming another host than Host.
    let twice = raw::get(addr, "/", Some(HOST), &["Host: ops.example.com", &cookie]).await;
    assert_eq!(twice.status, 400);
    let absolute = raw::get(addr, "http://ops.example.com/", Some(HOST), &[&cookie]).await;
    assert_eq!(absolute.status, 400);
    // An absolute target alone is the host (RFC 9112): judged as ops.
    let absolute = raw::get(addr, "http://ops.example.com/", None, &[&cookie]).await;
    assert_eq!(absolute.status, 403);
    // HTTP/1.1 needs a Host.
    assert_eq!(raw::get(addr, "/", None, &[&cookie]).await.status, 400);
}

#[tokio::test]
async fn paths_an_app_could_route_differently_are_refused() {
    let scene = scene().await;
    for path in [
        "/admin/../static/x",
        "/static/../admin/secret",
        "/static/./x",
        "/static/%2e%2e/admin",
        "/static/%2E%2e/admin",
        "/static/.%2e/admin",
        "/static/..%2fadmin",
        "/static%2f..%2fadmin",
        "/static%2F..%2Fadmin",
        "/static/..\\admin",
        "/static\\..\\admin",
        "/static/%5c..%5cadmin",
        "/static/..;/admin",
        "/static/%252e%252e/admin",
        "/_gatehouse/../admin",
        "/static/a%",
        "/static/a%zz",
        "/static/a%00",
    ] {
        for who in [None, Some(&scene.alice), Some(&scene.root)] {
            let response = scene.get(who, path, HOST).await;
            assert_eq!(response.status, 400, "{path}: {}", response.head);
        }
    }
}

#[tokio::test]
async fn paths_that_are_not_utf8_are_refused_never_judged_by_a_looser_rule() {
    let scene = scene().await;
    for path in ["/admin/%ff/../secret.txt", "/admin/%ff/secret.txt", "/admin/%c0%ae%c0%ae/x", "/static/%ff", "/%c0%af"]
    {
        for who in [None, Some(&scene.alice)] {
            assert_eq!(scene.get(who, path, HOST).await.status, 400, "{path}");
        }
    }
}

#[tokio::test]
async fn what_is_forwarded_is_the_canonical_path_that_was_judged() {
    let scene = scene().await;
    for (sent, judged_as_admin, forwarded) in [
        ("/%61dmin/x", true, "/admin/x"),
        ("//admin//x", true, "/admin/x"),
        ("/ADMIN/x", true, "/ADMIN/x"),
        ("/admin;jsessionid=1/x", true, "/admin;jsessionid=1/x"),
        ("/caf%c3%a9", false, "/caf%C3%A9"),
        ("/%7Euser/%2D", false, "/~user/-"),
    ] {
        let refused = scene.get(Some(&scene.alice), sent, HOST).await;
        assert_eq!(refused.status, if judged_as_admin { 403 } else { 200 }, "{sent}");
        let response = scene.get(Some(&scene.root), sent, HOST).await;
        assert_eq!(response.status, 200, "{sent}");
        assert_eq!(response.json()["path"], forwarded, "{sent}");
    }
    // A public rule does not stretch to readings that reach another rule.
    for sent in ["/STATIC/x", "/static;x/x", "/Static/x"] {
        assert_eq!(scene.get(None, sent, HOST).await.status, 303, "{sent} must not be public");
    }
    // The query is forwarded as it was sent; it is not part of any rule.
    let response = scene.get(Some(&scene.root), "/x?a=%2e%2e/&b=%ff", HOST).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn gatehouse_pages_are_found_by_their_canonical_path() {
    let scene = scene().await;
    // An escaped `_` is `_`: the sign-in page, not the app.
    let response = scene.get(None, "/%5Fgatehouse/login", HOST).await;
    assert_eq!(response.status, 200);
    assert!(response.body.contains("csrf_token"), "{}", response.body);
    let response = scene.get(None, "//_gatehouse//login", HOST).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn forward_auth_refuses_what_the_front_proxy_would_forward_unchanged() {
    let scene = scene().await;
    let cookie = format!("Cookie: {}", scene.root.cookie_header());
    let addr = scene.gatehouse.addr;
    let ask = |uri: &'static str, host: &'static str| {
        let cookie = cookie.clone();
        async move {
            let original = format!("X-Original-URI: {uri}");
            let forwarded_host = format!("X-Forwarded-Host: {host}");
            raw::get(addr, "/_gatehouse/auth", Some(HOST), &[&cookie, &original, &forwarded_host]).await
        }
    };
    assert_eq!(ask("/admin/x?y=1", HOST).await.status, 200);
    for uri in ["/static/../admin", "//admin", "/%61dmin", "/admin/%ff", "/a%2fb", "/static\\..\\admin"] {
        let response = ask(uri, HOST).await;
        assert_eq!(response.status, 403, "{uri}");
        assert!(response.body.contains("not_canonical") || response.body.contains("Address refused"), "{uri}");
    }
    for host in ["ops.example.com:abc", "OPS.example.com", "ops.example.com."] {
        assert_eq!(ask("/", host).await.status, 403, "{host}");
    }
    // Behind Traefik or Caddy (which set X-Forwarded-Uri and copy the client's other headers), a client adding
    // an X-Original-URI of its choice does not pick the rule it is judged by.
    let cookie = format!("Cookie: {}", scene.alice.cookie_header());
    let both = raw::get(
        addr,
        "/_gatehouse/auth",
        Some(HOST),
        &[&cookie, "X-Original-URI: /static/x", "X-Forwarded-Uri: /admin/x", "X-Forwarded-Host: apps.example.com"],
    )
    .await;
    assert_eq!(both.status, 403, "{}", both.head);
    let agreeing = raw::get(
        addr,
        "/_gatehouse/auth",
        Some(HOST),
        &[&cookie, "X-Original-URI: /x", "X-Forwarded-Uri: /x", "X-Forwarded-Host: apps.example.com"],
    )
    .await;
    assert_eq!(agreeing.status, 200, "{}", agreeing.head);
}

#[tokio::test]
async fn connection_cannot_drop_what_gatehouse_judged_or_the_app_checks() {
    let scene = scene().await;
    let cookie = format!("Cookie: {}; app_pref=dark", scene.root.cookie_header());
    let response = raw::get(
        scene.gatehouse.addr,
        "/x",
        Some(HOST),
        &[
            &cookie,
            "Origin: http://apps.example.com",
            "Connection: host, cookie, origin, x-forwarded-for, x-drop-me",
            "X-Drop-Me: 1",
        ],
    )
    .await;
    // `Connection: close` comes after the client's own `Connection` line; both are read as one list.
    assert_eq!(response.status, 200, "{}", response.head);
    let report = response.json();
    assert_eq!(echoed_header(&report, "host"), [HOST]);
    assert_eq!(echoed_header(&report, "cookie"), ["app_pref=dark"]);
    assert_eq!(echoed_header(&report, "origin"), ["http://apps.example.com"]);
    assert_eq!(echoed_header(&report, "x-forwarded-for"), ["127.0.0.1"]);
    assert!(echoed_header(&report, "x-drop-me").is_empty(), "an ordinary header named by Connection still goes");
}

#[tokio::test]
async fn other_gateways_identity_headers_never_reach_the_app() {
    let scene = scene().await;
    let forged = [
        "X-Auth-Request-User: root",
        "X-Auth-Request-Email: root@example.com",
        "X-Remote-User: root",
        "X-User: root",
        "X-Email: root@example.com",
        "X-Authenticated-User: root",
        "Remote-Username: root",
        "X-Forwarded-Preferred-Username: root",
        "X-Forwarded-Access-Token: forged",
        "X-Amzn-Oidc-Identity: root",
        "X-Goog-Authenticated-User-Email: accounts.google.com:root@example.com",
        "Cf-Access-Authenticated-User-Email: root@example.com",
        "X-Ms-Client-Principal-Name: root",
        "Tailscale-User-Login: root",
        "X-WEBAUTH-USER: root",
        "X-Ssl-Client-Dn: CN=root",
        "X_Gatehouse_User: root",
        "X-Gatehouse-Roles: admin",
    ];
    for who in [Some(&scene.alice), None] {
        let cookie = who.map(|b| format!("Cookie: {}", b.cookie_header()));
        let mut extra: Vec<&str> = forged.to_vec();
        extra.extend(cookie.iter().map(String::as_str));
        let path = if who.is_some() { "/x" } else { "/static/app.js" };
        let response = raw::get(scene.gatehouse.addr, path, Some(HOST), &extra).await;
        assert_eq!(response.status, 200, "{}", response.head);
        let report = response.json();
        let names: Vec<String> =
            report["headers"].as_array().unwrap().iter().map(|pair| pair[0].as_str().unwrap().to_owned()).collect();
        for line in &forged {
            let name = line.split(':').next().unwrap().to_ascii_lowercase();
            let expected_value =
                if who.is_some() && name == "x-gatehouse-roles" { vec!["analyst".to_owned()] } else { vec![] };
            assert_eq!(echoed_header(&report, &name), expected_value, "{name} in {names:?}");
        }
    }
}

#[tokio::test]
async fn connect_is_refused_even_when_signed_in() {
    let scene = scene().await;
    let request = format!(
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        scene.root.cookie_header()
    );
    let response = raw::send(scene.gatehouse.addr, request.as_bytes()).await;
    assert_eq!(response.status, 405, "{}", response.head);
}

#[tokio::test]
async fn a_websocket_handshake_reaches_the_app_as_websocket_only() {
    let scene = scene().await;
    let request = format!(
        "GET /_stcore/stream HTTP/1.1\r\nHost: {HOST}\r\nCookie: {}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        scene.root.cookie_header()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(scene.gatehouse.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // The 101, then the echo app's first frame: the handshake headers it received, as JSON.
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let headers = loop {
        let n =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&buffer[..n]);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        assert!(bytes.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&bytes));
        let frame = &bytes[end + 4..];
        if frame.len() < 4 {
            continue;
        }
        let (len, start) = match frame[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
            n => (usize::from(n), 2),
        };
        if frame.len() < start + len {
            continue;
        }
        break serde_json::from_slice::<serde_json::Value>(&frame[start..start + len]).unwrap();
    };
    let report = serde_json::json!({ "headers": headers });
    assert_eq!(echoed_header(&report, "upgrade"), ["websocket"]);
    assert_eq!(echoed_header(&report, "connection"), ["upgrade"]);
    assert!(echoed_header(&report, "http2-settings").is_empty());
}

#[tokio::test]
async fn the_app_cannot_plant_a_session_cookie_under_no_name() {
    let scene = scene().await;
    let mut root = scene.gatehouse.signed_in("root", PASSWORD).await;
    let response = root.get("/set-cookie-nameless").await;
    assert_eq!(response.status(), 200);
    let cookies: Vec<_> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(cookies, ["app_pref=dark; Path=/"]);
}

#[tokio::test]
async fn addresses_that_are_markup_are_refused_at_registration() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), "signup.mode = \"open\"\n").await;
    gatehouse.add_user("admin", PASSWORD, &["admin"]).await;
    for (n, email) in
        ["x@example.com<script>", "\"<svg/onload=alert(1)>\"@example.com", "a@[127.0.0.1]"].iter().enumerate()
    {
        let mut browser = gatehouse.browser();
        let token = browser.csrf_token("/_gatehouse/register").await;
        let username = format!("mallory{n}");
        let fields = [
            ("csrf_token", token.as_str()),
            ("username", username.as_str()),
            ("email", email),
            ("name", "Mallory"),
            ("password", PASSWORD),
        ];
        let response = browser.post_form("/_gatehouse/register", &fields).await;
        let html = response.text().await.unwrap();
        assert!(html.contains("is not a valid email address"), "{email}: {html}");
        assert!(gatehouse.store().user_by_login(&username).await.unwrap().is_none(), "{email} registered");
    }
}

/// Short limits, so the stalling tests take a fraction of a second of real time.
const SHORT_LIMITS: &str = "server.form_timeout = \"300ms\"\nserver.body_timeout = \"300ms\"\nserver.body_min_rate = 1024\nserver.max_connections_per_client = 8\n";

/// Writes `head` and `body_parts` (with pauses between them), then reads the answer; also says whether the
/// server closed the connection afterwards.
async fn slow_request(
    addr: std::net::SocketAddr,
    head: &str,
    body_parts: &[&[u8]],
    pause: std::time::Duration,
) -> (RawResponse, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for part in body_parts {
        tokio::time::sleep(pause).await;
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let mut bytes = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut bytes)).await.is_ok();
    (raw::parse(&bytes), closed)
}

#[tokio::test]
async fn a_form_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    let head = format!(
        "POST /_gatehouse/login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
    );
    let started = std::time::Instant::now();
    let (response, closed) = slow_request(gatehouse.addr, &head, &[], std::time::Duration::ZERO).await;
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(closed, "the connection must close");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    // A trickle (one byte at a time) is no better: the whole form has one deadline.
    let trickle: Vec<&[u8]> = std::iter::repeat_n(&b"x"[..], 20).collect();
    let (response, closed) = slow_request(gatehouse.addr, &head, &trickle, std::time::Duration::from_millis(50)).await;
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(closed);
    // An oversized declared body is refused at once.
    let huge = format!("POST /_gatehouse/login HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 9999999\r\n\r\n");
    let (response, _) = slow_request(gatehouse.addr, &huge, &[], std::time::Duration::ZERO).await;
    assert_eq!(response.status, 413, "{}", response.head);
}

#[tokio::test]
async fn a_stalled_body_for_the_app_is_cut_off_but_a_steady_one_passes() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    gatehouse.add_user("root", PASSWORD, &[]).await;
    let root = gatehouse.signed_in("root", PASSWORD).await;
    let head = |length: usize| {
        format!(
            "POST /count HTTP/1.1\r\nHost: {HOST}\r\nCookie: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
            root.cookie_header()
        )
    };
    let (response, closed) =
        slow_request(gatehouse.addr, &head(60_000), &[b"0123456789"], std::time::Duration::ZERO).await;
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(closed);
    // 8 KiB in 1 KiB pieces every 100 ms: ten times the minimum rate, for longer than body_timeout.
    let piece = [b'x'; 1024];
    let pieces: Vec<&[u8]> = std::iter::repeat_n(&piece[..], 8).collect();
    let (response, _) = slow_request(gatehouse.addr, &head(8192), &pieces, std::time::Duration::from_millis(100)).await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body, "8192");
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let stream = tokio::net::TcpStream::connect(gatehouse.addr).await.unwrap();
        // A request that is served, so the connection is known to be accepted and open.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        stream.write_all(format!("GET /_gatehouse/health HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes()).await.unwrap();
        let mut buffer = [0u8; 512];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let refused = raw::get(gatehouse.addr, "/_gatehouse/health", Some(HOST), &[]).await;
    assert_eq!(refused.status, 429, "{}", refused.head);
    drop(held.pop());
    assert_served_again(gatehouse.addr).await;
}

/// Waits (up to a second) until a new connection from this client is served again: a closed connection's
/// place comes back once the server has seen it close.
async fn assert_served_again(addr: std::net::SocketAddr) {
    let mut status = 0;
    for _ in 0..50 {
        status = raw::get(addr, "/_gatehouse/health", Some(HOST), &[]).await.status;
        if status == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("still refused after a connection closed: {status}");
}

/// Sends a WebSocket handshake for the echo app's stream; returns the answer's head and the open connection.
async fn open_tunnel(addr: std::net::SocketAddr, cookie: &str) -> (String, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /_stcore/stream HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // A refused connection may be closed before the request is even written.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap() {
            Ok(n) if n > 0 => head.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), stream)
}

#[tokio::test]
async fn websocket_tunnels_count_against_the_connection_limits() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    gatehouse.add_user("root", PASSWORD, &[]).await;
    let cookie = gatehouse.signed_in("root", PASSWORD).await.cookie_header();
    // Up to 8 connections from one client (the sign-in's pooled connection may hold one of them): tunnels
    // are connections too, for as long as they stay open.
    let mut tunnels = Vec::new();
    let refused = loop {
        let (head, stream) = open_tunnel(gatehouse.addr, &cookie).await;
        if head.starts_with("HTTP/1.1 101") {
            tunnels.push(stream);
            assert!(tunnels.len() <= 8, "more tunnels than connections allowed per client");
            continue;
        }
        break head;
    };
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(tunnels.len() >= 7, "only {} tunnels before the limit", tunnels.len());
    // A tunnel that closes gives its place back.
    drop(tunnels.pop());
    assert_served_again(gatehouse.addr).await;
}

#[tokio::test]
async fn an_unread_body_does_not_keep_a_refused_connection_open() {
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    // Anonymous: answered 401 (or the sign-in redirect) without reading the body; the rest never comes.
    let head =
        format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\nContent-Length: 60000\r\n\r\n");
    let started = std::time::Instant::now();
    let (response, closed) = slow_request(gatehouse.addr, &head, &[b"0123"], std::time::Duration::ZERO).await;
    assert_eq!(response.status, 401, "{}", response.head);
    assert!(closed, "the connection must not wait for the rest of a body nobody reads");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_still_sending_an_upload_gets_the_refusal_not_a_broken_pipe() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), SHORT_LIMITS).await;
    // Anonymous, 8 MiB: refused with 401 after the head. Closing then with the body unread would reset the
    // connection under the client's feet while it is still sending (curl: "Send failure: Broken pipe").
    let body = vec![b'x'; 8 << 20];
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for attempt in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(gatehouse.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let sent = stream.write_all(&body).await;
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
        assert!(sent.is_ok(), "attempt {attempt}: the upload was cut off: {sent:?}");
        assert!(matches!(read, Ok(Ok(_))), "attempt {attempt}: {read:?}");
        assert_eq!(raw::parse(&bytes).status, 401, "attempt {attempt}");
    }
}

#[tokio::test]
async fn an_app_that_stops_reading_a_body_is_given_up_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An app that accepts, reads the request head and then nothing more, and never answers.
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = app.accept().await {
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await;
            held.push(stream);
        }
    });
    let gatehouse = TestGatehouse::start_with(Some(app_addr), "upstream.timeout = \"1s\"\n").await;
    gatehouse.add_user("root", PASSWORD, &[]).await;
    let root = gatehouse.signed_in("root", PASSWORD).await;
    let length = 64 << 20;
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nCookie: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        root.cookie_header()
    );
    let stream = tokio::net::TcpStream::connect(gatehouse.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The client sends as fast as Gatehouse takes it; the app's buffers fill, then nobody reads.
    tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let started = std::time::Instant::now();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), reader.read_to_end(&mut bytes)).await;
    let response = raw::parse(&bytes);
    assert_eq!(response.status, 504, "{}", response.head);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gatehouse =
        TestGatehouse::start_with(Some(start_echo_upstream().await), "server.send_timeout = \"1s\"\n").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(gatehouse.addr).await.unwrap();
    // Thousands of pipelined requests for a page, and not one byte read: far more than the socket buffers hold.
    let request = format!("GET /_gatehouse/login HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let many = request.repeat(3000);
    let started = std::time::Instant::now();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.write_all(many.as_bytes())).await;
    // Give the server its second of no progress, then read: the connection must have been closed, so the
    // read reaches its end rather than waiting on answers that keep coming.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut sink = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    assert!(ended.is_ok(), "the connection was still open after {:?}", started.elapsed());
    let answered = sink.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
    assert!(answered < 3000, "every request was answered: nothing was cut off");
}

#[tokio::test]
async fn host_rules_do_not_fall_open_behind_a_proxy_that_rewrites_host() {
    // The test client is on loopback, here a trusted proxy, as nginx would be with its default
    // `proxy_set_header Host $proxy_host`: Host is Gatehouse's address, X-Forwarded-Host what the browser asked for.
    let config = format!("server.trusted_proxies = [\"127.0.0.1\"]\n{RULES}");
    let gatehouse = TestGatehouse::start_with(Some(start_echo_upstream().await), &config).await;
    gatehouse.add_user("alice", PASSWORD, &["analyst"]).await;
    let alice = gatehouse.signed_in("alice", PASSWORD).await;
    let cookie = format!("Cookie: {}", alice.cookie_header());
    let rewritten =
        raw::get(gatehouse.addr, "/", Some("127.0.0.1:8501"), &[&cookie, "X-Forwarded-Host: ops.example.com"]).await;
    assert_eq!(rewritten.status, 421, "{}", rewritten.head);
    // Passing the original Host (as documented) works as ever.
    let passed = raw::get(gatehouse.addr, "/x", Some(HOST), &[&cookie, "X-Forwarded-Host: apps.example.com"]).await;
    assert_eq!(passed.status, 200, "{}", passed.head);
    let ops =
        raw::get(gatehouse.addr, "/", Some("ops.example.com"), &[&cookie, "X-Forwarded-Host: ops.example.com"]).await;
    assert_eq!(ops.status, 403, "{}", ops.head);
}
