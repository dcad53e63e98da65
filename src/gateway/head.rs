//! Socket.IO requests get a request head of their own before engineioxide sees them.
//!
//! hyper parses the URI and header values as zero-copy slices of its read buffer, and
//! engineioxide keeps the request parts of every socket for the socket's lifetime
//! (`Socket::req_parts`). Left as they are, the slices keep that read buffer (8 KiB
//! or more) allocated per connected socket. Copying the URI and the headers (a few
//! hundred bytes) unpins what they held: 29.5 → 25.3 KB per idle socket
//! (`scripts/bench.sh idle`); the rest of the buffer is held inside hyper's upgrade.

use axum::{
    extract::{OriginalUri, Request},
    http::{HeaderMap, HeaderName, HeaderValue, Uri},
};

/// The path prefix of the Socket.IO endpoint.
const SOCKET_IO: &str = "/socket.io";

/// An owned copy of `uri` (the same value; no shared buffer).
fn own_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// Owned copies of every header (names and values), in order.
fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        copy.append(name, owned);
    }
    copy
}

/// `map_request` middleware: Socket.IO requests continue with an owned URI and headers.
pub async fn detach(mut req: Request) -> Request {
    if !req.uri().path().starts_with(SOCKET_IO) {
        return req;
    }
    let uri = own_uri(req.uri());
    *req.uri_mut() = uri;
    let headers = own_headers(req.headers());
    *req.headers_mut() = headers;
    if let Some(OriginalUri(original)) = req.extensions().get::<OriginalUri>() {
        let original = own_uri(original);
        req.extensions_mut().insert(OriginalUri(original));
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_io_heads_are_equal_copies_and_others_untouched() {
        let req = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket&token=abc")
            .header("authorization", "Bearer t")
            .header("x-custom", "1")
            .header("x-custom", "2")
            .body(axum::body::Body::empty())
            .expect("request");
        let (before_uri, before_headers) = (req.uri().clone(), req.headers().clone());
        let req = detach(req).await;
        assert_eq!(req.uri(), &before_uri);
        assert_eq!(req.headers(), &before_headers);
        assert_eq!(req.headers().get_all("x-custom").iter().count(), 2);

        let other = Request::builder()
            .uri("/healthz")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(detach(other).await.uri(), "/healthz");
    }
}
