//! HTTP plumbing shared by every HTTP-serving role: fallbacks, security headers,
//! request ids, tracing, panics, CORS, bearer tokens.

use std::{net::IpAddr, time::Duration};

use axum::{
    Router,
    http::{HeaderMap, HeaderName, Request, header},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The client's address: the TCP peer; or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` (read right to left) that is not a trusted proxy
/// itself. Anything else in the header is the client's word and is not believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(list) = value.to_str() else {
            return client;
        };
        for hop in list.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
    }
    client
}

/// Fallbacks and cross-cutting layers for any router serving clients.
pub fn finish(router: Router) -> Router {
    use axum::http::{HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    crate::telemetry::metrics_handle();
    let x_request_id = HeaderName::from_static("x-request-id");
    let security = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this route".into())
        })
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .layer(
            tower::ServiceBuilder::new()
                .layer(security(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(security(header::X_FRAME_OPTIONS, "DENY"))
                .layer(security(header::REFERRER_POLICY, "no-referrer"))
                .layer(security(header::CACHE_CONTROL, "no-store"))
                .layer(SetRequestIdLayer::new(
                    x_request_id.clone(),
                    MakeRequestUuid,
                ))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    axum::response::IntoResponse::into_response(ApiError::internal(
                        anyhow::anyhow!("handler panicked"),
                    ))
                })),
        )
}

/// The span of one request: its method, its route *template* (`/hooks/{hook_id}/{token}`,
/// `unmatched` for no route) and its request id. Never the path or the query: a
/// hook's secret token is part of its path, an SSE client's token can be in the query.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = crate::telemetry::route(req);
    tracing::info_span!("http", method = %req.method(), route = %route, request_id = %id)
}

/// CORS for REST and the Socket.IO handshake: only the configured origins (none by
/// default, so browsers get no cross-origin access until it is configured).
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        h.append("x-forwarded-for", "10.1.2.3".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_ip(ip("192.0.2.1"), &h, &trusted),
            ip("192.0.2.1"),
            "untrusted peer"
        );
        assert_eq!(
            client_ip(ip("10.9.9.9"), &h, &trusted),
            ip("198.51.100.7"),
            "the nearest untrusted hop; the spoofable left part is ignored"
        );
        assert_eq!(
            client_ip(ip("10.9.9.9"), &HeaderMap::new(), &trusted),
            ip("10.9.9.9")
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(ip("10.9.9.9"), &bad, &trusted), ip("10.9.9.9"));
        assert_eq!(
            client_ip(ip("10.9.9.9"), &h, &[]),
            ip("10.9.9.9"),
            "nothing trusted"
        );
    }
}
