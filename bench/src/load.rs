//! The senders: S tasks, each with one keep-alive connection to the API, posting
//! `POST /chats/:chatId/messages` round-robin over the chats, either as fast as the
//! answers come (closed loop) or on a fixed schedule for an offered rate (open loop:
//! sender i of S sends its k-th message at `start + (i + k·S) / rate`, at once if late).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use hyper::{Method, StatusCode, header::HeaderValue};
use tokio::time::Instant;

use crate::{http::Conn, recv::content, track::Tracker};

/// Where and as whom to send to one chat.
pub struct Target {
    pub path: String,
    pub auth: HeaderValue,
}

/// How to load.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Offered messages per second over all senders; `None` = as fast as possible.
    pub rate: Option<f64>,
    pub senders: usize,
    pub start: Instant,
    pub end: Instant,
    /// Hard cap on messages for the whole run.
    pub max_messages: u64,
}

fn error_key(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let s = s.split(':').next().unwrap_or("error").trim();
    format!("io/{s}")
}

/// Runs every sender until `plan.end` (or the cap) and waits for their last answers.
pub async fn run(api: SocketAddr, targets: Arc<Vec<Target>>, tracker: Arc<Tracker>, plan: Plan) {
    if targets.is_empty() || plan.senders == 0 {
        return;
    }
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.senders {
        let (targets, tracker, issued) = (targets.clone(), tracker.clone(), issued.clone());
        tasks.spawn(sender(api, i, targets, tracker, issued, plan));
    }
    while tasks.join_next().await.is_some() {}
}

async fn sender(
    api: SocketAddr,
    i: usize,
    targets: Arc<Vec<Target>>,
    tracker: Arc<Tracker>,
    issued: Arc<AtomicU64>,
    plan: Plan,
) {
    let mut conn = Conn::new(api);
    let interval = plan
        .rate
        .map(|r| Duration::from_secs_f64(plan.senders as f64 / r.max(0.001)));
    let offset = plan
        .rate
        .map(|r| Duration::from_secs_f64(i as f64 / r.max(0.001)));
    let mut k: u32 = 0;
    loop {
        if let (Some(interval), Some(offset)) = (interval, offset) {
            let due = plan.start + offset + interval * k;
            if due >= plan.end {
                return;
            }
            tokio::time::sleep_until(due).await;
        } else if Instant::now() >= plan.end {
            return;
        }
        k = k.saturating_add(1);
        let seq = issued.fetch_add(1, Relaxed);
        if seq >= plan.max_messages {
            return;
        }
        let chat = (seq % targets.len() as u64) as u32;
        let target = &targets[chat as usize];
        let sent_us = tracker.now_us();
        let Some(n) = tracker.begin(chat, sent_us) else {
            return;
        };
        let body = format!(
            r#"{{"content":"{}","clientMessageId":"{}"}}"#,
            content(chat, n, sent_us),
            uuid::Uuid::new_v4()
        );
        let result = match conn
            .request(
                Method::POST,
                &target.path,
                Some(&target.auth),
                Some(Bytes::from(body)),
            )
            .await
        {
            Ok(r) if r.status == StatusCode::ACCEPTED => Ok(()),
            Ok(r) => Err(format!("{}/{}", r.status.as_u16(), r.error_code())),
            Err(e) => Err(error_key(&e)),
        };
        let failed_io = matches!(&result, Err(k) if k.starts_with("io/"));
        tracker.finish(chat, n, sent_us, result);
        if failed_io {
            // The API is away: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
