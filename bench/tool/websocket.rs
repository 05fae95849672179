//! `bench-tool ws-echo | ws-load | ws-idle`: a WebSocket echo upstream, and closed-loop round trips, a
//! server-to-browser stream and many idle WebSockets through Gatehouse (bench/run.sh).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{BoxError, percentile_ms};

pub async fn ws_echo(listen: &str) -> Result<String, BoxError> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = socket.next().await {
                // "stream N SIZE": send N binary messages of SIZE bytes as fast as possible, then "done".
                if let Message::Text(text) = &message
                    && let Some(spec) = text.strip_prefix("stream ")
                {
                    let mut parts = spec.split(' ').filter_map(|n| n.parse::<usize>().ok());
                    let (count, size) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                    let payload = Bytes::from(vec![b's'; size]);
                    for _ in 0..count {
                        if socket.feed(Message::Binary(payload.clone())).await.is_err() {
                            return;
                        }
                    }
                    if socket.send(Message::text("done")).await.is_err() {
                        return;
                    }
                    continue;
                }
                if message.is_binary() || message.is_text() {
                    if socket.send(message).await.is_err() {
                        return;
                    }
                } else if message.is_close() {
                    return;
                }
            }
        });
    }
}

async fn ws_connect(
    url: &str,
    cookie: Option<&str>,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>, BoxError> {
    let mut request = url.into_client_request()?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert(http::header::COOKIE, HeaderValue::from_str(cookie)?);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    if let tokio_tungstenite::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_nodelay(true)?;
    }
    Ok(socket)
}

pub async fn ws_load(
    url: &str,
    cookie: Option<&str>,
    connections: u32,
    seconds: u64,
    size: usize,
) -> Result<String, BoxError> {
    let payload = Bytes::from(vec![b'x'; size]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut socket = ws_connect(url, cookie).await?;
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                if socket.send(Message::Binary(payload.clone())).await.is_err() {
                    break;
                }
                match socket.next().await {
                    Some(Ok(message)) if message.len() == payload.len() => latencies.push(sent.elapsed()),
                    _ => break,
                }
            }
            let _ = socket.close(None).await;
            latencies
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    latencies.sort();
    Ok(json!({
        "messages": latencies.len(),
        "messages_per_s": (latencies.len() as f64 / elapsed.as_secs_f64()).round(),
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
        "size": size,
        "connections": connections,
    })
    .to_string())
}

/// Each connection asks the echo server for batches of messages and counts what arrives until the deadline.
pub async fn ws_stream(
    url: &str,
    cookie: Option<&str>,
    connections: u32,
    seconds: u64,
    size: usize,
) -> Result<String, BoxError> {
    const BATCH: usize = 2000;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut socket = ws_connect(url, cookie).await?;
        tasks.push(tokio::spawn(async move {
            let (mut messages, mut bytes) = (0u64, 0u64);
            'batches: while Instant::now() < deadline {
                if socket.send(Message::text(format!("stream {BATCH} {size}"))).await.is_err() {
                    break;
                }
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Binary(data))) => {
                            messages += 1;
                            bytes += data.len() as u64;
                        }
                        Some(Ok(Message::Text(_))) => break,
                        Some(Ok(_)) => {}
                        _ => break 'batches,
                    }
                }
            }
            let _ = socket.close(None).await;
            (messages, bytes)
        }));
    }
    let started = Instant::now();
    let (mut messages, mut bytes) = (0, 0);
    for task in tasks {
        let (m, b) = task.await?;
        messages += m;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "messages": messages,
        "messages_per_s": (messages as f64 / elapsed).round(),
        "mib_per_s": bytes as f64 / elapsed / 1_048_576.0,
        "size": size,
        "connections": connections,
    })
    .to_string())
}

pub async fn ws_idle(url: &str, cookie: Option<&str>, count: u32, hold_seconds: u64) -> Result<String, BoxError> {
    let started = Instant::now();
    let opened = Arc::new(AtomicU64::new(0));
    // At most this many handshakes at once, so the listener's accept queue is never the limit.
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for _ in 0..count {
        let (url, cookie, gate, opened) = (url.to_owned(), cookie.map(str::to_owned), gate.clone(), opened.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok()?;
            let socket = ws_connect(&url, cookie.as_deref()).await.ok();
            drop(permit);
            if socket.is_some() {
                opened.fetch_add(1, Ordering::Relaxed);
            }
            socket
        }));
    }
    let mut sockets = Vec::new();
    for task in tasks {
        if let Some(socket) = task.await? {
            sockets.push(socket);
        }
    }
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    // The caller measures while the connections are idle; it reads this line first.
    eprintln!("ws-idle: {} open", sockets.len());
    tokio::time::sleep(Duration::from_secs(hold_seconds)).await;
    // Still open after the hold? Count the ones that answer a ping.
    let mut alive = 0;
    for socket in &mut sockets {
        if socket.send(Message::Ping(Bytes::from_static(b"p"))).await.is_ok()
            && matches!(tokio::time::timeout(Duration::from_secs(5), socket.next()).await, Ok(Some(Ok(_))))
        {
            alive += 1;
        }
    }
    Ok(json!({ "requested": count, "opened": opened.load(Ordering::Relaxed), "alive_after_hold": alive, "open_ms": open_ms }).to_string())
}
