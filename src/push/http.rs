//! The push services' HTTP side, shared by Web Push and FCM: one client with bounded
//! timeouts, `Retry-After` (seconds or an HTTP-date), a bounded read of error bodies,
//! and the status classes every push service shares.

use std::time::Duration;

use reqwest_tls::{Response, StatusCode, header::HeaderMap};

use super::Outcome;

/// Connecting (TCP and TLS) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, answer included, may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an error body that is read (for its reason).
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The client: rustls on the process's ring provider, system roots, HTTP/2 where the
/// service offers it, plain HTTP for `http://` URLs.
pub(super) fn client() -> anyhow::Result<reqwest_tls::Client> {
    Ok(reqwest_tls::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("courier/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A request that got no answer: worth another try later.
pub(super) fn network_failure(what: &str, e: &reqwest_tls::Error) -> Outcome {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    Outcome::Retry {
        after: None,
        reason: format!("{what}: {kind}: {}", root_cause(e)),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// `Retry-After` as a delay from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest_tls::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (at.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// Up to [`MAX_ERROR_BODY`] bytes of the answer, as text.
pub(super) async fn error_body(mut res: Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match res.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    String::from_utf8_lossy(&body).into_owned()
}

/// The classes both services share: 429 and 5xx are retried, with `Retry-After`.
pub(super) fn retryable(status: StatusCode, headers: &HeaderMap, what: &str) -> Option<Outcome> {
    (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()).then(|| Outcome::Retry {
        after: retry_after(headers),
        reason: format!("{what}: {status}"),
    })
}

/// `text` cut to `max` bytes on a character boundary, on one line (for a reason).
pub(super) fn short(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest_tls::header::{HeaderValue, RETRY_AFTER};

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(retry_after(&with("120")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&with(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(retry_after(&with("soon")), None);
        let at = chrono::Utc::now() + chrono::Duration::seconds(90);
        let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let d = retry_after(&with(&date)).unwrap();
        assert!(
            d > Duration::from_secs(85) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(
            retry_after(&with("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn statuses_429_and_5xx_are_retried() {
        for s in [429u16, 500, 502, 503] {
            let status = StatusCode::from_u16(s).unwrap();
            let got = retryable(status, &with("7"), "x");
            assert_eq!(
                got,
                Some(Outcome::Retry {
                    after: Some(Duration::from_secs(7)),
                    reason: format!("x: {status}")
                })
            );
        }
        for s in [200u16, 201, 400, 401, 404, 410, 413] {
            let status = StatusCode::from_u16(s).unwrap();
            assert_eq!(retryable(status, &HeaderMap::new(), "x"), None, "{s}");
        }
    }

    #[test]
    fn reasons_are_short_single_lines() {
        assert_eq!(short("a\nb", 10), "a b");
        assert_eq!(short("ééééé", 2), "éé…");
    }
}
