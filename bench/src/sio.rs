//! A minimal Socket.IO v5 client over the Engine.IO v4 WebSocket transport
//! (no polling, no binary events), enough to receive events the way
//! socket.io-client 4.x does:
//!
//! 1. WebSocket upgrade on `/socket.io/?EIO=4&transport=websocket`;
//! 2. the server's Engine.IO OPEN packet `0{"sid",...,"pingInterval","pingTimeout"}`;
//! 3. our Socket.IO CONNECT to the namespace with the auth object: `40/chat,{"token":"..."}`;
//! 4. the server's CONNECT `40/chat,{"sid":...}` or CONNECT_ERROR `44/chat,{"message":...}`;
//! 5. then Engine.IO PING `2` is answered with PONG `3`, events arrive as
//!    `42/chat,[name,payload]` (optionally with an ack id before the `[`),
//!    DISCONNECT `41/chat,` or Engine.IO CLOSE `1` ends the session.
//!
//! Buffers are kept small so that 10,000 sockets fit in one process.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpStream, sync::watch};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// How long the whole handshake (TCP, upgrade, OPEN, CONNECT) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected Socket.IO session on one namespace.
pub struct Socket {
    ws: WebSocketStream<TcpStream>,
    event_prefix: String,
    disconnect_prefix: String,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The caller's stop signal.
    Stopped,
    /// The server closed the socket, the namespace or the transport.
    Closed,
}

fn ws_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 4096;
    c.write_buffer_size = 0;
    c.max_message_size = Some(1 << 20);
    c.max_frame_size = Some(1 << 20);
    c
}

/// Connects and joins `namespace` with `{"token": token}`; errors carry the server's reason.
pub async fn connect(addr: SocketAddr, namespace: &str, token: &str) -> anyhow::Result<Socket> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(addr, namespace, token))
        .await
        .map_err(|_| anyhow!("handshake timeout"))?
}

async fn handshake(addr: SocketAddr, namespace: &str, token: &str) -> anyhow::Result<Socket> {
    let tcp = TcpStream::connect(addr).await.context("tcp connect")?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .context("websocket upgrade")?;
    // Engine.IO OPEN.
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        bail!("expected Engine.IO OPEN, got {open:.80}");
    }
    // Socket.IO CONNECT with the auth payload.
    let auth = serde_json::json!({ "token": token });
    ws.send(Message::text(format!("40{namespace},{auth}")))
        .await?;
    let connected = format!("40{namespace},");
    let refused = format!("44{namespace},");
    // A PING may come first; anything else before CONNECT is ignored (bounded).
    for _ in 0..16 {
        let pkt = next_text(&mut ws).await?;
        if pkt.starts_with(&connected) {
            return Ok(Socket {
                ws,
                event_prefix: format!("42{namespace},"),
                disconnect_prefix: format!("41{namespace}"),
            });
        }
        if let Some(reason) = pkt.strip_prefix(&refused) {
            bail!("connect_error {reason}");
        }
        if pkt == "2" {
            ws.send(Message::text("3")).await?;
        }
    }
    bail!("no CONNECT answer from the server")
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            None => bail!("websocket closed during handshake"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(_))) => bail!("websocket closed during handshake"),
            Some(Ok(_)) => {}
        }
    }
}

/// The JSON array `[name, payload...]` of an event packet, after the namespace and
/// any ack id.
fn event_body<'a>(pkt: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = pkt.strip_prefix(prefix)?;
    Some(rest.trim_start_matches(|c: char| c.is_ascii_digit()))
}

impl Socket {
    /// Receives until `stop` turns true or the server ends the session, answering
    /// pings and handing each event's JSON array to `on_event`.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut on_event: impl FnMut(&str),
    ) -> End {
        if *stop.borrow() {
            return End::Stopped;
        }
        loop {
            let msg = tokio::select! {
                _ = stop.changed() => {
                    // Best effort goodbye; the TCP close follows either way.
                    let _ = self.ws.close(None).await;
                    return End::Stopped;
                }
                m = self.ws.next() => m,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Closed,
                Some(Ok(_)) => continue,
            };
            let pkt = text.as_str();
            if pkt == "2" {
                if self.ws.send(Message::text("3")).await.is_err() {
                    return End::Closed;
                }
            } else if let Some(body) = event_body(pkt, &self.event_prefix) {
                on_event(body);
            } else if pkt == "1" || pkt.starts_with(&self.disconnect_prefix) {
                return End::Closed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies() {
        assert_eq!(
            event_body("42/chat,[\"a\",1]", "42/chat,"),
            Some("[\"a\",1]")
        );
        assert_eq!(event_body("42/chat,17[\"a\"]", "42/chat,"), Some("[\"a\"]"));
        assert_eq!(event_body("42/other,[\"a\"]", "42/chat,"), None);
        assert_eq!(event_body("2", "42/chat,"), None);
    }
}
