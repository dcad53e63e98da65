//! A minimal keep-alive HTTP/1.1 client: one `Conn` is one TCP connection (hyper's
//! connection-level API), reconnected when the server closes it. Each sender task
//! owns one, so the pool of S senders is S persistent connections, no locking.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{
    Method, Request, StatusCode,
    client::conn::http1::SendRequest,
    header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// How long one request (connect included) may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Body>>,
}

/// A response: status and the whole body.
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Response {
    /// The `code` of a Courier error body (`validation_failed`, ...), or "-".
    pub fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
            .unwrap_or_else(|| "-".into())
    }
}

/// A bearer token as a ready header value.
pub fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header value")
}

impl Conn {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or(HeaderValue::from_static("127.0.0.1"));
        Self {
            addr,
            host,
            sender: None,
        }
    }

    async fn open(&mut self) -> anyhow::Result<&mut SendRequest<Body>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connect {}", self.addr))?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                // Ends when the connection closes; errors show up on the next request.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        sender.ready().await?;
        Ok(sender)
    }

    /// Sends one request and reads the whole response, within `REQUEST_TIMEOUT`.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        json: Option<Bytes>,
    ) -> anyhow::Result<Response> {
        match tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.request_inner(method, path, auth, json),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                Err(anyhow!("timeout after {REQUEST_TIMEOUT:?}"))
            }
        }
    }

    async fn request_inner(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        json: Option<Bytes>,
    ) -> anyhow::Result<Response> {
        let host = self.host.clone();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host);
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let body: Body = match json {
            Some(b) => {
                req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(b).boxed()
            }
            None => Empty::new().boxed(),
        };
        let req = req.body(body)?;
        let sender = self.open().await?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Response { status, body })
    }

    /// `GET path` answered 200?
    pub async fn ok(&mut self, path: &str) -> bool {
        matches!(self.request(Method::GET, path, None, None).await, Ok(r) if r.status == StatusCode::OK)
    }
}
