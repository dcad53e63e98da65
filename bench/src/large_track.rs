//! Large groups: what happened to each message sent into one group (accepted or not,
//! how many online members got it, its e2e time in the histogram of its phase), the
//! members' sockets (spread over the gateways) and the open-loop senders.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    ops::Range,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode, header::HeaderValue};
use serde::Serialize;
use tokio::{
    sync::{Semaphore, watch},
    time::Instant,
};

use crate::{
    http::Conn,
    recv::{EVENT_NEW, NAMESPACE, NewEvent, Seen, SeqState, content, parse_content},
    sio,
    track::{Percentiles, histogram},
};

const PENDING: u8 = 0;
const ACCEPTED: u8 = 1;
const FAILED: u8 = 2;
/// Handshakes per socket before giving up (a refused or timed-out one is retried).
const CONNECT_TRIES: usize = 5;

#[derive(Default)]
struct Slot {
    sent_us: AtomicU64,
    state: AtomicU8,
    phase: AtomicU8,
    got: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shared by the senders and every member socket of one group.
pub struct GroupTracker {
    epoch: std::time::Instant,
    online: u32,
    slots: Vec<Slot>,
    next: AtomicU64,
    e2e: Vec<Mutex<Histogram<u64>>>,
    accept: Vec<Mutex<Histogram<u64>>>,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    unknown: AtomicU64,
    event_bytes: AtomicU64,
    events: AtomicU64,
    /// `chat.updated` events received, all sockets together (membership churn).
    updated: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// The event every member gets when the group is renamed or its members change.
const EVENT_UPDATED: &str = "[\"chat.updated\",";

/// One phase's messages (a range of message numbers) as seen at the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseCount {
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    pub unanswered: u64,
    /// Accepted messages some online member had not got.
    pub lost_messages: u64,
    pub lost_events: u64,
    /// Sends started per second: (sent − 1) ÷ (last send start − first send start).
    pub sent_per_s: f64,
}

impl GroupTracker {
    /// `capacity` messages at most, `phases` e2e histograms, `online` member sockets.
    pub fn new(capacity: usize, phases: usize, online: u32) -> anyhow::Result<Self> {
        let hists = |n: usize| -> anyhow::Result<Vec<_>> {
            (0..n).map(|_| Ok(Mutex::new(histogram()?))).collect()
        };
        Ok(Self {
            epoch: std::time::Instant::now(),
            online,
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            next: AtomicU64::new(0),
            e2e: hists(phases)?,
            accept: hists(phases)?,
            duplicated: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            event_bytes: AtomicU64::new(0),
            events: AtomicU64::new(0),
            updated: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// The number the next message will get (phases are contiguous ranges).
    pub fn mark(&self) -> u32 {
        (self.next.load(Relaxed) as usize).min(self.slots.len()) as u32
    }

    fn begin(&self, phase: u8, sent_us: u64) -> Option<u32> {
        let n = self.next.fetch_add(1, Relaxed) as usize;
        let slot = self.slots.get(n)?;
        slot.phase.store(phase, Relaxed);
        slot.sent_us.store(sent_us, Relaxed);
        Some(n as u32)
    }

    fn finish(&self, n: u32, result: Result<(), String>) {
        let Some(slot) = self.slots.get(n as usize) else {
            return;
        };
        let took = self.now_us().saturating_sub(slot.sent_us.load(Relaxed));
        match result {
            Ok(()) => {
                slot.state.store(ACCEPTED, Relaxed);
                if let Some(h) = self.accept.get(slot.phase.load(Relaxed) as usize) {
                    lock(h).saturating_record(took.max(1));
                }
            }
            Err(key) => {
                slot.state.store(FAILED, Relaxed);
                *lock(&self.errors).entry(key).or_insert(0) += 1;
            }
        }
    }

    fn delivered(&self, n: u32, sent_us: u64, bytes: usize) {
        let now = self.now_us();
        let Some(slot) = self
            .slots
            .get(n as usize)
            .filter(|s| s.sent_us.load(Relaxed) == sent_us)
        else {
            self.unknown.fetch_add(1, Relaxed);
            return;
        };
        slot.got.fetch_add(1, Relaxed);
        self.events.fetch_add(1, Relaxed);
        self.event_bytes.fetch_add(bytes as u64, Relaxed);
        if let Some(h) = self.e2e.get(slot.phase.load(Relaxed) as usize) {
            lock(h).saturating_record(now.saturating_sub(sent_us).max(1));
        }
    }

    /// Every message of `range` answered, and each accepted one at every online member.
    pub fn drained(&self, range: Range<u32>) -> bool {
        self.slots[range.start as usize..range.end as usize]
            .iter()
            .all(|s| match s.state.load(Relaxed) {
                PENDING => false,
                ACCEPTED => s.got.load(Relaxed) >= self.online,
                _ => true,
            })
    }

    /// Waits (bounded by `deadline`) for `range` to drain; true if it did.
    pub async fn wait_drained(&self, range: Range<u32>, deadline: Instant) -> bool {
        loop {
            if self.drained(range.clone()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn count(&self, range: Range<u32>) -> PhaseCount {
        let mut c = PhaseCount::default();
        let (mut first, mut last) = (u64::MAX, 0);
        for s in &self.slots[range.start as usize..range.end as usize] {
            c.sent += 1;
            let at = s.sent_us.load(Relaxed);
            (first, last) = (first.min(at), last.max(at));
            match s.state.load(Relaxed) {
                ACCEPTED => {
                    c.accepted += 1;
                    let got = s.got.load(Relaxed);
                    if got < self.online {
                        c.lost_messages += 1;
                        c.lost_events += u64::from(self.online - got);
                    }
                }
                FAILED => c.failed += 1,
                _ => c.unanswered += 1,
            }
        }
        if c.sent > 1 && last > first {
            c.sent_per_s = (c.sent - 1) as f64 * 1e6 / (last - first) as f64;
        }
        c
    }

    pub fn e2e(&self, phase: u8) -> Percentiles {
        self.e2e
            .get(phase as usize)
            .map(|h| Percentiles::of(&lock(h)))
            .unwrap_or_default()
    }

    pub fn accept(&self, phase: u8) -> Percentiles {
        self.accept
            .get(phase as usize)
            .map(|h| Percentiles::of(&lock(h)))
            .unwrap_or_default()
    }

    /// (duplicated, out of order, unknown) over the whole run of this group.
    pub fn flaws(&self) -> (u64, u64, u64) {
        (
            self.duplicated.load(Relaxed),
            self.out_of_order.load(Relaxed),
            self.unknown.load(Relaxed),
        )
    }

    /// Mean length of a received `chat.message.new` packet body (one copy of the event).
    pub fn mean_event_bytes(&self) -> f64 {
        self.event_bytes.load(Relaxed) as f64 / self.events.load(Relaxed).max(1) as f64
    }

    /// `chat.updated` events received so far by all the member sockets.
    pub fn updated(&self) -> u64 {
        self.updated.load(Relaxed)
    }

    /// Waits (bounded by `deadline`) until `updated()` reaches `count`; true if it did.
    pub async fn wait_updated(&self, count: u64, deadline: Instant) -> bool {
        loop {
            if self.updated() >= count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }
}

/// The member sockets of one group.
pub struct Members {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
    pub connected: usize,
    /// Failures of the last try only; earlier failed tries are counted in `retries`.
    pub errors: HashMap<String, usize>,
    pub retries: u64,
    pub secs: f64,
}

/// Connects one socket per token, token i to gateway i mod G, each then receiving
/// until `Members::close`.
pub async fn connect(
    gateways: &[SocketAddr],
    tokens: Vec<String>,
    tracker: Arc<GroupTracker>,
    concurrency: usize,
) -> Members {
    let started = std::time::Instant::now();
    let (stop, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(tokens.len().max(1));
    let total = tokens.len();
    let retries = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let addr = gateways[i % gateways.len().max(1)];
        let (gate, done_tx, stop_rx, tracker, retries) = (
            gate.clone(),
            done_tx.clone(),
            stop_rx.clone(),
            tracker.clone(),
            retries.clone(),
        );
        tasks.spawn(async move {
            let mut socket = Err(anyhow::anyhow!("not tried"));
            for attempt in 0..CONNECT_TRIES {
                if attempt > 0 {
                    retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
                }
                let _permit = gate.acquire().await;
                socket = sio::connect(addr, NAMESPACE, &token).await;
                if socket.is_ok() {
                    break;
                }
            }
            let socket = match socket {
                Ok(s) => {
                    let _ = done_tx.send(Ok(())).await;
                    s
                }
                Err(e) => {
                    let _ = done_tx.send(Err(format!("{e:#}"))).await;
                    return;
                }
            };
            drop(done_tx);
            let mut seqs = SeqState::default();
            socket
                .run(stop_rx, |body| {
                    if body.starts_with(EVENT_UPDATED) {
                        tracker.updated.fetch_add(1, Relaxed);
                        return;
                    }
                    if !body.starts_with(EVENT_NEW) {
                        return;
                    }
                    let parsed = serde_json::from_str::<NewEvent>(body).ok().and_then(|e| {
                        let NewEvent(_, p, _) = e;
                        Some((parse_content(&p.message.content)?, p.message.sequence))
                    });
                    let Some(((_, n, sent_us), seq)) = parsed else {
                        tracker.unknown.fetch_add(1, Relaxed);
                        return;
                    };
                    match seqs.observe(seq) {
                        Seen::Again => {
                            tracker.duplicated.fetch_add(1, Relaxed);
                        }
                        Seen::Untrackable => {
                            tracker.unknown.fetch_add(1, Relaxed);
                        }
                        Seen::Fresh { in_order } => {
                            if !in_order {
                                tracker.out_of_order.fetch_add(1, Relaxed);
                            }
                            tracker.delivered(n, sent_us, body.len());
                        }
                    }
                })
                .await;
        });
    }
    drop(done_tx);
    let (mut connected, mut errors) = (0, HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    for _ in 0..total {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(Ok(()))) => connected += 1,
            Ok(Some(Err(e))) => *errors.entry(e).or_insert(0) += 1,
            _ => break,
        }
    }
    Members {
        stop,
        tasks,
        connected,
        errors,
        retries: retries.load(Relaxed),
        secs: started.elapsed().as_secs_f64(),
    }
}

impl Members {
    /// Closes every socket (bounded wait).
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

/// What to send: the group's message route and the sender's bearer.
pub struct Send {
    pub api: SocketAddr,
    pub path: String,
    pub auth: HeaderValue,
}

/// Sends at `rate` msg/s for `secs` on `senders` keep-alive connections (open loop:
/// sender i sends its k-th message at `start + (i + k·S)/rate`, at once if late).
/// Messages due before `switch` count in phase `phases.0`, the others in `phases.1`.
pub async fn send(
    to: Arc<Send>,
    tracker: Arc<GroupTracker>,
    rate: f64,
    secs: f64,
    senders: usize,
    phases: (u8, u8, Duration),
) {
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + Duration::from_secs_f64(secs);
    let switch = start + phases.2;
    let senders = senders.max(1);
    let interval = Duration::from_secs_f64(senders as f64 / rate.max(0.001));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..senders {
        let (to, tracker) = (to.clone(), tracker.clone());
        tasks.spawn(async move {
            let mut conn = Conn::new(to.api);
            let offset = Duration::from_secs_f64(i as f64 / rate.max(0.001));
            for k in 0u32.. {
                let due = start + offset + interval * k;
                if due >= end {
                    return;
                }
                tokio::time::sleep_until(due).await;
                let phase = if due < switch { phases.0 } else { phases.1 };
                let sent_us = tracker.now_us();
                let Some(n) = tracker.begin(phase, sent_us) else {
                    return;
                };
                let body = format!(
                    r#"{{"content":"{}","clientMessageId":"{}"}}"#,
                    content(u32::from(phase), n, sent_us),
                    uuid::Uuid::new_v4()
                );
                let result = match conn
                    .request(
                        Method::POST,
                        &to.path,
                        Some(&to.auth),
                        Some(Bytes::from(body)),
                    )
                    .await
                {
                    Ok(r) if r.status == StatusCode::ACCEPTED => Ok(()),
                    Ok(r) => Err(format!("{}/{}", r.status.as_u16(), r.error_code())),
                    Err(e) => Err(format!("io/{e:#}")),
                };
                tracker.finish(n, result);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
