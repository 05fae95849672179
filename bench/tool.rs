//! `bench-tool`: the compiled load generators behind `bench/run.sh`, for the rows `wrk` cannot do.
//! Each subcommand prints one JSON object on stdout; `bench/run.sh` turns them into table rows.
//!
//! ```text
//! cargo build --release --example bench-tool
//! bench-tool fixed-rate URL --rate 500 --seconds 10 [--connections 4] [-H 'Cookie: ...']
//! bench-tool ws-echo --listen 127.0.0.1:9000              # WebSocket echo upstream (runs until killed)
//! bench-tool ws-load URL [--cookie C] --connections 16 --seconds 10 --size 2048
//! bench-tool ws-idle URL --cookie C --count 10000 --hold-seconds 20
//! bench-tool sign-in-storm BASE --users bench0,bench1 --password P --seconds 10 --probe-url URL --probe-cookie C
//! bench-tool hash-time [--samples 20]
//! bench-tool many-sessions URL --cookies FILE --seconds 10 [--connections 16]
//! bench-tool first-request URL --cookie C -- COMMAND...   # ms from spawning COMMAND to its first 200
//! bench-tool code-flows AUTHORIZE_URL --token-url URL --cookie C --client-id ID --client-secret S \
//!     --redirect-uri R --verifier V --seconds 10 [--connections 8]   # OpenID Connect sign-ins per second
//! ```
//!
//! Latency is measured per request from writing it to having read the whole response, with one keep-alive
//! connection per client task, on a multi-threaded runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(name = "bench-tool", about = "Load generators for bench/run.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP GETs on a fixed schedule; reports service-time percentiles.
    FixedRate {
        url: String,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        connections: u32,
        /// Extra request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
    },
    /// A WebSocket echo server.
    WsEcho {
        #[arg(long)]
        listen: String,
    },
    /// Closed-loop WebSocket echo round trips over several connections.
    WsLoad {
        url: String,
        #[arg(long)]
        cookie: Option<String>,
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value_t = 2048)]
        size: usize,
        /// `echo`: each connection sends a message and waits for it to come back (round-trip latency);
        /// `stream`: the server sends messages as fast as it can (throughput of a server-to-browser stream).
        #[arg(long, default_value = "echo")]
        mode: String,
    },
    /// Opens many WebSockets, reports when they are all open, holds them idle, then closes them.
    WsIdle {
        url: String,
        #[arg(long)]
        cookie: Option<String>,
        #[arg(long)]
        count: u32,
        #[arg(long)]
        hold_seconds: u64,
    },
    /// Concurrent password sign-ins (one client per user) while a fixed-rate probe measures proxied requests.
    SignInStorm {
        base: String,
        #[arg(long, value_delimiter = ',')]
        users: Vec<String>,
        #[arg(long)]
        password: String,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        probe_url: String,
        #[arg(long)]
        probe_cookie: String,
        #[arg(long, default_value_t = 200)]
        probe_rate: u32,
    },
    /// Closed-loop GETs over several connections, each request with the next session cookie from a file
    /// (one cookie value per line), so that most requests make Gatehouse validate a session it has not
    /// cached.
    ManySessions {
        url: String,
        #[arg(long)]
        cookies: std::path::PathBuf,
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long)]
        seconds: u64,
    },
    /// The time of one password hash with Gatehouse's parameters.
    HashTime {
        #[arg(long, default_value_t = 20)]
        samples: u32,
    },
    /// Closed-loop OpenID Connect code flows with a signed-in browser session, as an app's `st.login()` does
    /// them: the authorization request (answered with a redirect carrying a code), then the token request
    /// (client_secret_basic, PKCE); a flow counts when the token response has an ID token.
    CodeFlows {
        /// The complete authorization URL (client, redirect URI, scope, PKCE challenge of `--verifier`).
        authorize_url: String,
        #[arg(long)]
        token_url: String,
        /// The provider's session cookie(s), as a Cookie header value.
        #[arg(long)]
        cookie: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        client_secret: String,
        #[arg(long)]
        redirect_uri: String,
        #[arg(long)]
        verifier: String,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        connections: u32,
    },
    /// Spawns COMMAND and reports how long until URL answers 200 with the cookie.
    FirstRequest {
        url: String,
        #[arg(long)]
        cookie: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[path = "tool/code_flows.rs"]
mod code_flows;
#[path = "tool/websocket.rs"]
mod websocket;

use code_flows::{CodeFlow, code_flows};
use websocket::{ws_echo, ws_idle, ws_load, ws_stream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::FixedRate { url, rate, seconds, connections, headers } => {
            fixed_rate_command(&url, rate, seconds, connections, &headers).await
        }
        Command::WsEcho { listen } => ws_echo(&listen).await,
        Command::WsLoad { url, cookie, connections, seconds, size, mode } => match mode.as_str() {
            "echo" => ws_load(&url, cookie.as_deref(), connections, seconds, size).await,
            "stream" => ws_stream(&url, cookie.as_deref(), connections, seconds, size).await,
            other => Err(format!("unknown mode '{other}'").into()),
        },
        Command::WsIdle { url, cookie, count, hold_seconds } => {
            ws_idle(&url, cookie.as_deref(), count, hold_seconds).await
        }
        Command::SignInStorm { base, users, password, seconds, probe_url, probe_cookie, probe_rate } => {
            sign_in_storm(&base, &users, &password, seconds, &probe_url, &probe_cookie, probe_rate).await
        }
        Command::ManySessions { url, cookies, connections, seconds } => {
            many_sessions(&url, &cookies, connections, seconds).await
        }
        Command::HashTime { samples } => hash_time(samples),
        Command::FirstRequest { url, cookie, command } => first_request(&url, &cookie, &command).await,
        Command::CodeFlows {
            authorize_url,
            token_url,
            cookie,
            client_id,
            client_secret,
            redirect_uri,
            verifier,
            seconds,
            connections,
        } => {
            let flow = CodeFlow { authorize_url, token_url, cookie, client_id, client_secret, redirect_uri, verifier };
            code_flows(Arc::new(flow), seconds, connections).await
        }
    };
    match result {
        Ok(report) => println!("{report}"),
        Err(err) => {
            eprintln!("bench-tool: {err}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP client: one keep-alive connection
// ---------------------------------------------------------------------------------------------------------

struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Connection {
    async fn open(uri: &Uri) -> Result<Self, BoxError> {
        Self::open_authority(uri.authority().ok_or("URL without host")?.as_str()).await
    }

    async fn open_authority(authority: &str) -> Result<Self, BoxError> {
        let authority = authority.to_owned();
        let stream = TcpStream::connect(&authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { sender, authority })
    }

    async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, BoxError> {
        let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let mut request = Request::builder().method(method).uri(path).header(http::header::HOST, &self.authority);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body))?;
        if self.sender.ready().await.is_err() {
            // The server closed the connection after its last answer (nginx does after 1,000 requests, with
            // `Connection: close`); a browser opens a new one, and so do we. Nothing was sent on it.
            *self = Self::open_authority(&self.authority).await?;
            self.sender.ready().await?;
        }
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer { status: parts.status, headers: parts.headers, body })
    }
}

fn parse_headers(raw: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, BoxError> {
    raw.iter()
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("header '{line}' has no ':'"))?;
            Ok((HeaderName::from_bytes(name.trim().as_bytes())?, HeaderValue::from_str(value.trim())?))
        })
        .collect()
}

/// Percentile (0-100) of sorted samples, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------------------
// fixed-rate
// ---------------------------------------------------------------------------------------------------------

struct RateReport {
    latencies: Vec<Duration>,
    errors: u64,
    late: u64,
    elapsed: Duration,
}

impl RateReport {
    fn json(mut self) -> serde_json::Value {
        self.latencies.sort();
        json!({
            "requests": self.latencies.len(),
            "achieved_rps": (self.latencies.len() as f64 / self.elapsed.as_secs_f64()).round(),
            "p50_ms": percentile_ms(&self.latencies, 50.0),
            "p99_ms": percentile_ms(&self.latencies, 99.0),
            "max_ms": percentile_ms(&self.latencies, 100.0),
            "errors": self.errors,
            "late_sends": self.late,
        })
    }
}

/// `connections` tasks, each on its own schedule (offset so that sends interleave), together `rate` per second.
async fn fixed_rate(
    url: &str,
    rate: u32,
    duration: Duration,
    connections: u32,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<RateReport, BoxError> {
    let uri: Uri = url.parse()?;
    let headers = Arc::new(headers);
    let interval = Duration::from_secs_f64(f64::from(connections) / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..connections {
        let (uri, headers) = (uri.clone(), headers.clone());
        let mut connection = Connection::open(&uri).await?;
        let offset = interval.mul_f64(f64::from(index) / f64::from(connections));
        tasks.push(tokio::spawn(async move {
            let mut report = RateReport { latencies: Vec::new(), errors: 0, late: 0, elapsed: duration };
            let mut next = started + offset;
            while next < started + duration {
                tokio::time::sleep_until(next.into()).await;
                let sent = Instant::now();
                // tokio's timers tick in milliseconds, so a send up to 1 ms after its slot is on time.
                if sent > next + Duration::from_millis(2) {
                    report.late += 1;
                }
                match connection.send(Method::GET, &uri, &headers, Bytes::new()).await {
                    Ok(answer) if answer.status.is_success() => report.latencies.push(sent.elapsed()),
                    Ok(_) => report.errors += 1,
                    Err(_) => {
                        report.errors += 1;
                        match Connection::open(&uri).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
                next += interval;
            }
            report
        }));
    }
    let mut total = RateReport { latencies: Vec::new(), errors: 0, late: 0, elapsed: duration };
    for task in tasks {
        let report = task.await?;
        total.latencies.extend(report.latencies);
        total.errors += report.errors;
        total.late += report.late;
    }
    Ok(total)
}

async fn fixed_rate_command(
    url: &str,
    rate: u32,
    seconds: u64,
    connections: u32,
    headers: &[String],
) -> Result<String, BoxError> {
    let headers = parse_headers(headers)?;
    let report = fixed_rate(url, rate, Duration::from_secs(seconds), connections.max(1), headers).await?;
    Ok(report.json().to_string())
}

// ---------------------------------------------------------------------------------------------------------
// Sign-in storm
// ---------------------------------------------------------------------------------------------------------

/// One sign-in through the real form: GET the page (CSRF cookie and token), POST the credentials.
async fn sign_in_once(
    connection: &mut Connection,
    base: &Uri,
    origin: &HeaderValue,
    user: &str,
    password: &str,
) -> Result<bool, BoxError> {
    let page_uri: Uri = format!("{}/_gatehouse/login?rd=/", base.to_string().trim_end_matches('/')).parse()?;
    let page = connection.send(Method::GET, &page_uri, &[], Bytes::new()).await?;
    let csrf_cookie = page
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|pair| pair.contains("gatehouse_csrf=")))
        .ok_or("no CSRF cookie on the sign-in page")?
        .to_owned();
    let html = String::from_utf8_lossy(&page.body);
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no csrf_token on the sign-in page")?
        .to_owned();
    let form =
        serde_urlencoded::to_string([("username", user), ("password", password), ("csrf_token", &token), ("rd", "/")])?;
    let post_uri: Uri = format!("{}/_gatehouse/login", base.to_string().trim_end_matches('/')).parse()?;
    let headers = [
        (http::header::COOKIE, HeaderValue::from_str(&csrf_cookie)?),
        (http::header::ORIGIN, origin.clone()),
        (http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded")),
    ];
    let answer = connection.send(Method::POST, &post_uri, &headers, Bytes::from(form)).await?;
    Ok(answer.status == StatusCode::SEE_OTHER
        && answer
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("gatehouse_session=") && !v.contains("Max-Age=0"))))
}

async fn sign_in_storm(
    base: &str,
    users: &[String],
    password: &str,
    seconds: u64,
    probe_url: &str,
    probe_cookie: &str,
    probe_rate: u32,
) -> Result<String, BoxError> {
    let duration = Duration::from_secs(seconds);
    let probe_headers =
        || -> Result<_, BoxError> { Ok(vec![(http::header::COOKIE, HeaderValue::from_str(probe_cookie)?)]) };
    // Baseline: the probe alone.
    let quiet = fixed_rate(probe_url, probe_rate, duration, 4, probe_headers()?).await?.json();

    let base_uri: Uri = base.parse()?;
    let origin = HeaderValue::from_str(base.trim_end_matches('/'))?;
    let deadline = Instant::now() + duration;
    let mut signers = Vec::new();
    for user in users {
        let (base_uri, origin, user, password) = (base_uri.clone(), origin.clone(), user.clone(), password.to_owned());
        signers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut connection = Connection::open(&base_uri).await?;
            while Instant::now() < deadline {
                match sign_in_once(&mut connection, &base_uri, &origin, &user, &password).await {
                    Ok(true) => ok += 1,
                    Ok(false) => failed += 1,
                    Err(_) => {
                        failed += 1;
                        connection = Connection::open(&base_uri).await?;
                    }
                }
            }
            Ok::<_, BoxError>((ok, failed))
        }));
    }
    let started = Instant::now();
    let storm_probe = fixed_rate(probe_url, probe_rate, duration, 4, probe_headers()?).await?.json();
    let (mut ok, mut failed) = (0, 0);
    for signer in signers {
        let (o, f) = signer.await??;
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "sign_ins": ok,
        "failed": failed,
        "sign_ins_per_s": ok as f64 / elapsed,
        "clients": users.len(),
        "probe_quiet": quiet,
        "probe_storm": storm_probe,
    })
    .to_string())
}

async fn many_sessions(
    url: &str,
    cookies: &std::path::Path,
    connections: u32,
    seconds: u64,
) -> Result<String, BoxError> {
    let uri: Uri = url.parse()?;
    let cookies: Arc<Vec<HeaderValue>> = Arc::new(
        std::fs::read_to_string(cookies)?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| HeaderValue::from_str(&format!("gatehouse_session={}", line.trim())))
            .collect::<Result<_, _>>()?,
    );
    if cookies.is_empty() {
        return Err("no cookies in the file".into());
    }
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (uri, cookies, next) = (uri.clone(), cookies.clone(), next.clone());
        let mut connection = Connection::open(&uri).await?;
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize % cookies.len();
                let headers = [(http::header::COOKIE, cookies[index].clone())];
                let sent = Instant::now();
                match connection.send(Method::GET, &uri, &headers, Bytes::new()).await {
                    Ok(answer) if answer.status.is_success() => latencies.push(sent.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match Connection::open(&uri).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Ok(json!({
        "requests": latencies.len(),
        "rps": (latencies.len() as f64 / elapsed).round(),
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
        "errors": errors,
        "sessions": cookies.len(),
    })
    .to_string())
}

fn hash_time(samples: u32) -> Result<String, BoxError> {
    let hash = gatehouse::auth::password::hash_blocking("bench-password")?;
    let mut times = Vec::new();
    for _ in 0..samples.max(1) {
        let started = Instant::now();
        let verified = gatehouse::auth::password::verify_blocking("bench-password", &hash);
        times.push(started.elapsed());
        assert!(matches!(verified, gatehouse::auth::password::Verification::Valid { .. }));
    }
    times.sort();
    let median = times[times.len() / 2];
    Ok(json!({ "median_ms": median.as_secs_f64() * 1000.0, "samples": times.len(), "hash": hash.split('$').take(4).collect::<Vec<_>>().join("$") }).to_string())
}

async fn first_request(url: &str, cookie: &str, command: &[String]) -> Result<String, BoxError> {
    let uri: Uri = url.parse()?;
    let headers = vec![(http::header::COOKIE, HeaderValue::from_str(cookie)?)];
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&command[0]).args(&command[1..]).kill_on_drop(true).spawn()?;
    let mut attempts = 0u64;
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    loop {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("no 200 from {url} within 10 s ({statuses:?})").into());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the command exited with {status} before answering").into());
        }
        attempts += 1;
        if let Ok(mut connection) = Connection::open(&uri).await
            && let Ok(answer) = connection.send(Method::GET, &uri, &headers, Bytes::new()).await
        {
            *statuses.entry(answer.status.as_u16()).or_default() += 1;
            if answer.status == StatusCode::OK {
                break;
            }
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let pid = child.id().unwrap_or(0);
    let rss_kib = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0)
    };
    let at_first_request = rss_kib();
    // Idle: after start-up work that runs in the background (the dummy password hash) has finished and its
    // memory has been handed back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib();
    child.start_kill()?;
    let _ = child.wait().await;
    Ok(json!({
        "first_200_ms": elapsed_ms,
        "attempts": attempts,
        "rss_kib_at_first_request": at_first_request,
        "rss_kib_idle": idle,
    })
    .to_string())
}
