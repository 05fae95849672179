//! WebSocket helpers: open Streamlit's stream path through Gatehouse as a browser would, and watch it close.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Browser, TestGatehouse};

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens Streamlit's WebSocket path through Gatehouse with the browser's cookies and reads the echo
/// upstream's first message (the handshake report).
pub async fn open_stream(gatehouse: &TestGatehouse, browser: &Browser) -> Socket {
    open_stream_at(gatehouse.addr, browser).await
}

/// [`open_stream`] to a Gatehouse at `addr` (e.g. one running as a separate process).
pub async fn open_stream_at(addr: std::net::SocketAddr, browser: &Browser) -> Socket {
    let mut request = format!("ws://{addr}/_stcore/stream").into_client_request().unwrap();
    request.headers_mut().insert("cookie", browser.cookie_header().parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.next().await.unwrap().unwrap();
    socket
}

/// Whether the server closes the socket (close frame, error or end of stream) within `limit`.
pub async fn closes_within(socket: &mut Socket, limit: Duration) -> bool {
    let closed = async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
        }
    };
    tokio::time::timeout(limit, closed).await.is_ok()
}
