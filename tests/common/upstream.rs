//! Test upstreams: an echo app (HTTP and WebSocket) that reports what it received, and a raw TCP app that
//! behaves like Streamlit on keep-alive connections (no TCP_NODELAY, head and body in separate writes).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> BoxBody {
    Full::new(body.into()).boxed()
}

/// Headers as a JSON list of [name, value] pairs (names lower case, values lossily decoded).
fn headers_json(headers: &http::HeaderMap) -> serde_json::Value {
    json!(
        headers
            .iter()
            .map(|(k, v)| [k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()])
            .collect::<Vec<_>>()
    )
}

/// Starts the echo app on a free loopback port.
///
/// - `GET /slow` waits 5 s before answering (for upstream timeouts);
/// - `GET /stream` sends one chunk, then a second only after 600 ms (to prove streaming);
/// - `POST /first-chunk` answers as soon as the first body chunk arrives, with its size;
/// - `POST /count` reads the whole body and answers with its length;
/// - `GET /status/NNN` answers with that status;
/// - `GET /set-cookie` tries to set Gatehouse's cookies and one of its own;
/// - `GET /set-cookie-nameless` tries nameless cookies, which browsers send back as their bare value;
/// - `GET /html-page` answers a small HTML page like Streamlit's (with an `ETag`, and gzip when asked for), whose
///   body ends with the request headers the app saw, as an HTML comment;
/// - a WebSocket upgrade anywhere: first message is the JSON of the handshake headers, then an echo;
/// - anything else: JSON `{method, path, headers, body_len}`.
pub async fn start_echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn echo(mut request: Request<Incoming>) -> Result<Response<BoxBody>, Infallible> {
    let path = request.uri().path().to_owned();
    if request.headers().contains_key(http::header::UPGRADE) {
        return Ok(accept_websocket(&mut request));
    }
    let response = match (request.method().as_str(), path.as_str()) {
        ("GET", "/slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(full("slow"))
        }
        ("GET", "/stream") => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
            tokio::spawn(async move {
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first chunk;")))).await;
                tokio::time::sleep(Duration::from_millis(600)).await;
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"second chunk")))).await;
            });
            Response::new(BodyExt::boxed(StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx))))
        }
        ("POST", "/first-chunk") => {
            let first = request.body_mut().frame().await.and_then(|f| f.ok()).and_then(|f| f.into_data().ok());
            Response::new(full(format!("first chunk: {} bytes", first.map_or(0, |b| b.len()))))
        }
        ("POST", "/count") => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            Response::new(full(body.to_string()))
        }
        ("GET", "/set-cookie") => {
            let mut response = Response::new(full("cookies set"));
            let headers = response.headers_mut();
            headers.append("set-cookie", "gatehouse_session=planted-by-the-app; Path=/".parse().unwrap());
            headers.append("set-cookie", "gatehouse_csrf=planted; Path=/".parse().unwrap());
            headers.append("set-cookie", "app_pref=dark; Path=/".parse().unwrap());
            response
        }
        ("GET", "/set-cookie-nameless") => {
            let mut response = Response::new(full("cookies set"));
            let headers = response.headers_mut();
            headers.append("set-cookie", "=gatehouse_session=planted-by-the-app; Path=/".parse().unwrap());
            headers.append("set-cookie", " =gatehouse_csrf=planted".parse().unwrap());
            headers.append("set-cookie", "gatehouse_session".parse().unwrap());
            headers.append("set-cookie", "app_pref=dark; Path=/".parse().unwrap());
            response
        }
        ("GET", "/html-page") => {
            let gzip =
                request.headers().get("accept-encoding").is_some_and(|v| v.as_bytes().windows(4).any(|w| w == b"gzip"));
            let seen = headers_json(request.headers()).to_string().replace("--", "");
            let html = format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n  <head>\n    <title>App</title>\n  </head>\n  <body><div id=\"root\"></div></body>\n</html>\n<!-- {seen} -->\n"
            );
            let mut response = Response::new(full(html.clone()));
            let headers = response.headers_mut();
            headers.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            headers.insert("etag", "\"app-etag\"".parse().unwrap());
            headers.insert("content-length", html.len().to_string().parse().unwrap());
            if gzip {
                // Not real gzip: only the header matters to Gatehouse, which must then leave the body alone.
                headers.insert("content-encoding", "gzip".parse().unwrap());
            }
            response
        }
        (_, p) if p.starts_with("/status/") => {
            let code = p.trim_start_matches("/status/").parse().unwrap_or(500);
            let mut response = Response::new(full("from the app"));
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
            response
        }
        _ => {
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let headers = headers_json(request.headers());
            let body_len = request.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            let body = json!({ "method": method, "path": uri, "headers": headers, "body_len": body_len });
            let mut response = Response::new(full(body.to_string()));
            response.headers_mut().insert("content-type", "application/json".parse().unwrap());
            response.headers_mut().insert("x-upstream", "echo".parse().unwrap());
            response
        }
    };
    Ok(response)
}

fn accept_websocket(request: &mut Request<Incoming>) -> Response<BoxBody> {
    let Some(key) = request.headers().get("sec-websocket-key").cloned() else {
        let mut response = Response::new(full("not a websocket"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let handshake_headers = headers_json(request.headers());
    let protocol = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or("").trim().to_owned());
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut socket =
            tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if socket.send(Message::text(handshake_headers.to_string())).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("connection", "upgrade".parse().unwrap());
    headers.insert("upgrade", "websocket".parse().unwrap());
    headers.insert("sec-websocket-accept", derive_accept_key(key.as_bytes()).parse().unwrap());
    if let Some(protocol) = protocol {
        headers.insert("sec-websocket-protocol", protocol.parse().unwrap());
    }
    response
}

/// An app with Streamlit's keep-alive behaviour: Nagle left on, and every response written as a head
/// segment followed by a separate body segment.
pub async fn start_nagle_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Read one request head (these test requests have no body).
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buffer.drain(..end);
                    let body = b"ok";
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A port on which nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
