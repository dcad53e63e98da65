//! Socket.IO requests get a request head of their own before engineioxide sees them.
//!
//! hyper parses the URI and header values as zero-copy slices of its read buffer, and
//! engineioxide keeps the request parts of every socket for the socket's lifetime
//! (`Socket::req_parts`). Left as they are, the slices keep that read buffer (8 KiB
//! or more) allocated per connected socket. Copying the URI and the headers (a few
//! hundred bytes) unpins what they held: 29.5 → 25.3 KB per idle socket
//! (`scripts/bench.sh idle`).
//!
//! Only the headers something after this layer reads are kept: the token
//! (`Authorization`, read by the connect handler), the WebSocket key (engineioxide's
//! upgrade) and the content type (engineioxide's polling POSTs). CORS has already run.
//! The rest (user agent, cookies, a proxy's `X-Forwarded-*`, ...) would be held per
//! socket for nothing: 14.9 → 14.4 KB per idle socket with socket.io-client's own
//! headers, more behind a proxy. Likewise only two request extensions stay: hyper's
//! upgrade handle (engineioxide upgrades with it) and the peer address; the router's
//! path parameters and original URI went with every socket (13.3 → 12.9 KB).
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request},
    http::{Extensions, HeaderMap, HeaderName, HeaderValue, Uri, header},
};
use hyper::upgrade::OnUpgrade;

/// The path prefix of the Socket.IO endpoint.
const SOCKET_IO: &str = "/socket.io";

/// An owned copy of `uri` (the same value; no shared buffer).
fn own_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// The headers read after this layer (see the module's documentation).
const KEPT: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::SEC_WEBSOCKET_KEY,
    header::CONTENT_TYPE,
];

/// Owned copies of the [`KEPT`] headers, in order; the others are left out.
fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(KEPT.len());
    for name in &KEPT {
        for value in headers.get_all(name) {
            let mut owned =
                HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
            owned.set_sensitive(value.is_sensitive());
            copy.append(name.clone(), owned);
        }
    }
    copy
}

/// The extensions read after this layer: hyper's upgrade handle and the peer address.
fn kept_extensions(extensions: &mut Extensions) -> Extensions {
    let mut kept = Extensions::new();
    if let Some(upgrade) = extensions.remove::<OnUpgrade>() {
        kept.insert(upgrade);
    }
    if let Some(peer) = extensions.remove::<ConnectInfo<SocketAddr>>() {
        kept.insert(peer);
    }
    kept
}

/// `map_request` middleware: Socket.IO requests continue with an owned URI and headers,
/// and only the extensions read after it.
pub async fn detach(mut req: Request) -> Request {
    if !req.uri().path().starts_with(SOCKET_IO) {
        return req;
    }
    let uri = own_uri(req.uri());
    *req.uri_mut() = uri;
    let headers = own_headers(req.headers());
    *req.headers_mut() = headers;
    let extensions = kept_extensions(req.extensions_mut());
    *req.extensions_mut() = extensions;
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_io_heads_keep_equal_copies_of_what_is_read_and_others_are_untouched() {
        let req = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket&token=abc")
            .header("authorization", "Bearer t")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("content-type", "text/plain")
            .header("user-agent", "node")
            .header("x-forwarded-for", "10.0.0.1")
            .extension(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 4000))))
            .extension(axum::extract::OriginalUri(Uri::from_static("/socket.io/")))
            .body(axum::body::Body::empty())
            .expect("request");
        let before_uri = req.uri().clone();
        let req = detach(req).await;
        assert_eq!(req.uri(), &before_uri);
        assert_eq!(
            req.uri().query(),
            Some("EIO=4&transport=websocket&token=abc")
        );
        let h = req.headers();
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["authorization"], "Bearer t");
        assert_eq!(h["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(h["content-type"], "text/plain");
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        assert_eq!(peer, Some(SocketAddr::from(([10, 0, 0, 2], 4000))));
        assert!(
            req.extensions()
                .get::<axum::extract::OriginalUri>()
                .is_none()
        );

        let other = Request::builder()
            .uri("/healthz")
            .header("user-agent", "curl")
            .body(axum::body::Body::empty())
            .expect("request");
        let other = detach(other).await;
        assert_eq!(other.uri(), "/healthz");
        assert_eq!(other.headers()["user-agent"], "curl");
    }
}
