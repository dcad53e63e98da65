//! Receiving sockets: one task per socket, all on the one runtime. Each checks the
//! `sequence` order per chat on its own socket (out-of-order, duplicate) and hands
//! every `chat.message.new` to the tracker, which times it against the send
//! timestamp carried in the content.

use std::{
    borrow::Cow,
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, de::IgnoredAny};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::{sio, track::Tracker};

pub const NAMESPACE: &str = "/chat";
pub(crate) const EVENT_NEW: &str = "[\"chat.message.new\",";
const EVENT_SAVED: &str = "[\"chat.message.saved\",";

/// Message content: `bench <chat index> <number in chat> <send time, µs since start>`.
pub fn content(chat: u32, n: u32, sent_us: u64) -> String {
    format!("bench {chat} {n} {sent_us}")
}

pub(crate) fn parse_content(s: &str) -> Option<(u32, u32, u64)> {
    let mut it = s.strip_prefix("bench ")?.split(' ');
    let chat = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let t = it.next()?.parse().ok()?;
    Some((chat, n, t))
}

/// `[name, payload]`, or `[name, payload, offset]`: events that carry an offset repeat
/// it as a trailing argument (Socket.IO connection state recovery).
#[derive(Deserialize)]
pub(crate) struct NewEvent<'a>(
    pub(crate) IgnoredAny,
    #[serde(borrow)] pub(crate) Payload<'a>,
    #[expect(dead_code, reason = "read only to accept the argument")]
    #[serde(default)]
    pub(crate) Option<IgnoredAny>,
);

#[derive(Deserialize)]
pub(crate) struct Payload<'a> {
    #[serde(borrow)]
    pub(crate) message: MessageView<'a>,
}

#[derive(Deserialize)]
pub(crate) struct MessageView<'a> {
    #[serde(borrow)]
    pub(crate) content: Cow<'a, str>,
    pub(crate) sequence: i64,
}

/// Highest sequence seen and every sequence seen, of one chat on one socket.
#[derive(Default)]
pub(crate) struct SeqState {
    last: i64,
    seen: Vec<u64>,
}

/// Sequences above this are not tracked (a run never gets near it).
const MAX_TRACKED_SEQUENCE: i64 = 1 << 24;

pub(crate) enum Seen {
    Fresh { in_order: bool },
    Again,
    Untrackable,
}

impl SeqState {
    pub(crate) fn observe(&mut self, seq: i64) -> Seen {
        if !(1..=MAX_TRACKED_SEQUENCE).contains(&seq) {
            return Seen::Untrackable;
        }
        let i = (seq - 1) as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            return Seen::Again;
        }
        self.seen[word] |= bit;
        let in_order = seq > self.last;
        self.last = self.last.max(seq);
        Seen::Fresh { in_order }
    }
}

/// One receiving socket: its token and, for each chat it is in, its slot (0..recipients).
pub struct Recipient {
    pub token: String,
    pub slots: HashMap<u32, u8>,
}

/// The handler of one flow socket.
fn flow_handler(tracker: Arc<Tracker>, slots: HashMap<u32, u8>) -> impl FnMut(&str) {
    let mut seqs: HashMap<u32, SeqState> = HashMap::new();
    move |body: &str| {
        if !body.starts_with(EVENT_NEW) {
            if body.starts_with(EVENT_SAVED) {
                tracker.saved_event();
            } else {
                tracker.other_event();
            }
            return;
        }
        let Ok(NewEvent(_, p, _)) = serde_json::from_str::<NewEvent>(body) else {
            tracker.unknown();
            return;
        };
        let Some((chat, n, sent_us)) = parse_content(&p.message.content) else {
            tracker.unknown();
            return;
        };
        let Some(slot) = slots.get(&chat).copied() else {
            tracker.unknown();
            return;
        };
        match seqs.entry(chat).or_default().observe(p.message.sequence) {
            Seen::Again => tracker.duplicate(),
            Seen::Untrackable => tracker.unknown(),
            Seen::Fresh { in_order } => {
                if !in_order {
                    tracker.out_of_order();
                }
                tracker.delivered(chat, n, slot, sent_us);
            }
        }
    }
}

/// The sockets of a run: connect results and how many are still open.
pub struct Fleet {
    pub stop: watch::Sender<bool>,
    pub open: Arc<AtomicU64>,
    pub events: Arc<AtomicU64>,
    pub tasks: tokio::task::JoinSet<()>,
}

/// How connecting went.
pub struct ConnectStats {
    pub connected: usize,
    pub failed: usize,
    pub secs: f64,
    /// Failure reasons, counted.
    pub errors: HashMap<String, usize>,
}

/// Connects every recipient (at most `concurrency` handshakes at a time), each then
/// receiving until the fleet is stopped. Flow sockets report to `tracker`; without
/// one, events are only counted. Returns when every handshake finished (or `timeout`).
pub async fn connect_fleet(
    addr: SocketAddr,
    recipients: Vec<Recipient>,
    tracker: Option<Arc<Tracker>>,
    concurrency: usize,
    timeout: Duration,
) -> (Fleet, ConnectStats) {
    let (stop, stop_rx) = watch::channel(false);
    let open = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let total = recipients.len();
    let (done_tx, mut done_rx) = mpsc::channel::<Result<(), String>>(total.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for r in recipients {
        let (stop_rx, open, events, gate, done_tx) = (
            stop_rx.clone(),
            open.clone(),
            events.clone(),
            gate.clone(),
            done_tx.clone(),
        );
        let tracker = tracker.clone();
        tasks.spawn(async move {
            let connected = {
                let _permit = gate.acquire().await;
                sio::connect(addr, NAMESPACE, &r.token).await
            };
            let socket = match connected {
                Ok(s) => s,
                Err(e) => {
                    let _ = done_tx.send(Err(format!("{e:#}"))).await;
                    return;
                }
            };
            open.fetch_add(1, Relaxed);
            let _ = done_tx.send(Ok(())).await;
            drop(done_tx);
            match tracker {
                Some(t) => {
                    let mut h = flow_handler(t, r.slots);
                    socket
                        .run(stop_rx, |b| {
                            events.fetch_add(1, Relaxed);
                            h(b)
                        })
                        .await
                }
                None => {
                    socket
                        .run(stop_rx, |_| {
                            events.fetch_add(1, Relaxed);
                        })
                        .await
                }
            };
            open.fetch_sub(1, Relaxed);
        });
    }
    drop(done_tx);
    let mut stats = ConnectStats {
        connected: 0,
        failed: 0,
        secs: 0.0,
        errors: HashMap::new(),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    while stats.connected + stats.failed < total {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(Ok(()))) => stats.connected += 1,
            Ok(Some(Err(e))) => {
                stats.failed += 1;
                *stats.errors.entry(e).or_insert(0) += 1;
            }
            Ok(None) => break,
            Err(_) => {
                let missing = total - stats.connected - stats.failed;
                stats.failed += missing;
                stats
                    .errors
                    .insert("no answer before the connect timeout".into(), missing);
                break;
            }
        }
    }
    stats.secs = started.elapsed().as_secs_f64();
    (
        Fleet {
            stop,
            open,
            events,
            tasks,
        },
        stats,
    )
}

impl Fleet {
    /// Closes every socket and waits (bounded) for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_round_trip() {
        assert_eq!(parse_content(&content(3, 7, 123456)), Some((3, 7, 123456)));
        assert_eq!(parse_content("hello"), None);
    }

    #[test]
    fn sequences() {
        let mut s = SeqState::default();
        assert!(matches!(s.observe(1), Seen::Fresh { in_order: true }));
        assert!(matches!(s.observe(3), Seen::Fresh { in_order: true }));
        assert!(matches!(s.observe(2), Seen::Fresh { in_order: false }));
        assert!(matches!(s.observe(3), Seen::Again));
        assert!(matches!(s.observe(0), Seen::Untrackable));
    }

    #[test]
    fn parses_new_events() {
        let body = r#"["chat.message.new",{"chatId":"c","message":{"id":"x","content":"bench 1 2 3","sequence":5,"sentAt":"t"}}]"#;
        let NewEvent(_, p, _) = serde_json::from_str(body).unwrap();
        assert_eq!(
            (p.message.content.as_ref(), p.message.sequence),
            ("bench 1 2 3", 5)
        );
        // With the offset repeated as a trailing argument, as the gateway sends it.
        let body = r#"["chat.message.new",{"offset":"1-0","chatId":"c","message":{"id":"x","content":"bench 1 2 4","sequence":6,"sentAt":"t"}},"1-0"]"#;
        let NewEvent(_, p, _) = serde_json::from_str(body).unwrap();
        assert_eq!(p.message.sequence, 6);
    }
}
