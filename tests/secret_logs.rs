//! Secrets in URLs never reach the logs: a hook's token is part of its path
//! (`/hooks/{hook_id}/{token}`), an SSE or Socket.IO client's access token can be in the
//! query (`?token=`). The real all-in-one service runs with every span and event down
//! to DEBUG captured (span fields printed when each span opens); the requests are
//! made, then the captured text is searched for the secrets.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use common::{Mode, spawn_with, test_config};
use serde_json::json;
use tracing_subscriber::{EnvFilter, fmt, fmt::format::FmtSpan, prelude::*};

/// Everything logged in this test binary.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::registry()
            .with(EnvFilter::new("debug"))
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
                    .with_writer(move || Sink(sink.clone())),
            )
            .init();
        logs
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap()).into_owned()
}

#[tokio::test]
async fn tokens_in_urls_stay_out_of_the_logs() {
    captured();
    let app = spawn_with(Mode::AllInOne, test_config(&[])).await;
    let (owner, member) = (app.register("own").await, app.register("mem").await);
    let chat = app.group_chat(&owner, &[&member]).await;
    let (status, hook) = app
        .call(
            "POST",
            &format!("/chats/{chat}/hooks"),
            Some(&owner.token),
            Some(json!({ "name": "ci" })),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let url = hook["url"].as_str().unwrap().to_string();
    let hook_token = url.rsplit('/').next().unwrap().to_string();
    assert!(hook_token.len() >= 43);

    let (status, body) = app
        .call(
            "POST",
            &url,
            None,
            Some(json!({ "content": "deploy done", "clientMessageId": uuid::Uuid::new_v4() })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // A wrong token for the same hook: the failure path logs nothing of it either.
    let wrong = format!("{}x", &hook_token[..hook_token.len() - 1]);
    let bad_url = url.replace(&hook_token, &wrong);
    let (status, _) = app
        .call("POST", &bad_url, None, Some(json!({ "content": "x" })))
        .await;
    assert_eq!(status, 401);

    // SSE with the access token in the query: a valid one (the stream opens) and a
    // bad one (refused).
    let sse = app
        .http
        .get(format!("{}/events?token={}", app.addr, member.token))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);
    let bad_sse = "sse-secret-0123456789abcdef";
    let refused = app
        .http
        .get(format!("{}/events?token={bad_sse}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // A Socket.IO polling handshake with the token in the query.
    let sio = app
        .http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling&token={}",
            app.addr, owner.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(sio.status(), 200);

    let text = logs();
    assert!(
        text.contains(r#""route":"/hooks/{hook_id}/{token}""#),
        "the hook request's span names its route template ({} bytes captured)",
        text.len()
    );
    assert!(
        text.contains(r#""route":"/events""#),
        "the SSE requests' spans name their route"
    );
    for (what, secret) in [
        ("the hook token", hook_token.as_str()),
        ("the wrong hook token", wrong.as_str()),
        ("an SSE query token", bad_sse),
        ("an access token", member.token.as_str()),
        ("an access token", owner.token.as_str()),
    ] {
        if let Some(at) = text.find(secret) {
            let line = text[..at].rsplit('\n').next().unwrap_or_default();
            panic!("{what} is in the logs: {line}{secret}…");
        }
    }
    drop(app);
}
