//! What happened to every message: offered, accepted (202) or failed, and which
//! recipients got it. Messages are named by (chat index, per-chat number), both
//! carried in the message content with the send timestamp, so a recipient needs
//! no lookup to attribute an event.
//!
//! Rates and latencies count only the measurement window (after the warm-up);
//! loss and duplicates count every message of the run.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Message state: waiting for the HTTP answer, accepted (202) or failed.
const PENDING: u8 = 0;
const ACCEPTED: u8 = 1;
const FAILED: u8 = 2;

#[derive(Clone, Copy)]
struct Msg {
    state: u8,
    /// Bit `slot` set once recipient `slot` of the chat got it.
    delivered: u32,
}

struct ChatLog {
    recipients: u32,
    msgs: Vec<Msg>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Default)]
struct Counters {
    offered: AtomicU64,
    offered_window: AtomicU64,
    accepted: AtomicU64,
    accepted_window: AtomicU64,
    failed: AtomicU64,
    /// Recipient deliveries expected for the accepted messages.
    expected_events: AtomicU64,
    delivered: AtomicU64,
    delivered_window: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    /// Events naming no message this run sent (or a slot the chat does not have).
    unknown: AtomicU64,
    saved_events: AtomicU64,
    other_events: AtomicU64,
}

/// Shared by every sender and receiver task.
pub struct Tracker {
    epoch: Instant,
    window_start_us: AtomicU64,
    window_end_us: AtomicU64,
    chats: Vec<Mutex<ChatLog>>,
    e2e: Mutex<Histogram<u64>>,
    accept: Mutex<Histogram<u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    c: Counters,
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

impl Tracker {
    /// `recipients[i]` = how many recipient sockets chat `i` has.
    pub fn new(recipients: &[u32]) -> anyhow::Result<Self> {
        Ok(Self {
            epoch: Instant::now(),
            window_start_us: AtomicU64::new(u64::MAX),
            window_end_us: AtomicU64::new(u64::MAX),
            chats: recipients
                .iter()
                .map(|r| {
                    Mutex::new(ChatLog {
                        recipients: (*r).min(32),
                        msgs: Vec::new(),
                    })
                })
                .collect(),
            e2e: Mutex::new(histogram()?),
            accept: Mutex::new(histogram()?),
            errors: Mutex::new(BTreeMap::new()),
            c: Counters::default(),
        })
    }

    /// Microseconds since the tracker was made (the clock of message contents).
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn set_window(&self, start_us: u64, end_us: u64) {
        self.window_start_us.store(start_us, Relaxed);
        self.window_end_us.store(end_us, Relaxed);
    }

    fn in_window(&self, t_us: u64) -> bool {
        t_us >= self.window_start_us.load(Relaxed) && t_us < self.window_end_us.load(Relaxed)
    }

    /// A send of chat `chat` starts at `t_us`: returns the message's number in the chat.
    pub fn begin(&self, chat: u32, t_us: u64) -> Option<u32> {
        let log = self.chats.get(chat as usize)?;
        let mut log = lock(log);
        let n = log.msgs.len() as u32;
        log.msgs.push(Msg {
            state: PENDING,
            delivered: 0,
        });
        drop(log);
        self.c.offered.fetch_add(1, Relaxed);
        if self.in_window(t_us) {
            self.c.offered_window.fetch_add(1, Relaxed);
        }
        Some(n)
    }

    /// The answer to a send that started at `sent_us`: `Ok` for 202, `Err(key)` otherwise.
    pub fn finish(&self, chat: u32, n: u32, sent_us: u64, result: Result<(), String>) {
        let took = self.now_us().saturating_sub(sent_us);
        let Some(log) = self.chats.get(chat as usize) else {
            return;
        };
        let mut log = lock(log);
        let recipients = log.recipients;
        if let Some(m) = log.msgs.get_mut(n as usize) {
            m.state = if result.is_ok() { ACCEPTED } else { FAILED };
        }
        drop(log);
        let windowed = self.in_window(sent_us);
        match result {
            Ok(()) => {
                self.c.accepted.fetch_add(1, Relaxed);
                self.c
                    .expected_events
                    .fetch_add(u64::from(recipients), Relaxed);
                if windowed {
                    self.c.accepted_window.fetch_add(1, Relaxed);
                    lock(&self.accept).saturating_record(took.max(1));
                }
            }
            Err(key) => {
                self.c.failed.fetch_add(1, Relaxed);
                *lock(&self.errors).entry(key).or_insert(0) += 1;
            }
        }
    }

    /// Recipient `slot` of `chat` got message `n`, sent at `sent_us`.
    pub fn delivered(&self, chat: u32, n: u32, slot: u8, sent_us: u64) {
        let now = self.now_us();
        let Some(log) = self.chats.get(chat as usize) else {
            self.c.unknown.fetch_add(1, Relaxed);
            return;
        };
        let mut log = lock(log);
        let bit = 1u32.checked_shl(u32::from(slot)).unwrap_or(0);
        let fresh = match log.msgs.get_mut(n as usize) {
            Some(m) if bit != 0 && m.delivered & bit == 0 => {
                m.delivered |= bit;
                true
            }
            Some(_) if bit != 0 => false,
            _ => {
                drop(log);
                self.c.unknown.fetch_add(1, Relaxed);
                return;
            }
        };
        drop(log);
        if !fresh {
            self.c.duplicated.fetch_add(1, Relaxed);
            return;
        }
        self.c.delivered.fetch_add(1, Relaxed);
        if self.in_window(now) {
            self.c.delivered_window.fetch_add(1, Relaxed);
        }
        if self.in_window(sent_us) {
            lock(&self.e2e).saturating_record(now.saturating_sub(sent_us).max(1));
        }
    }

    pub fn duplicate(&self) {
        self.c.duplicated.fetch_add(1, Relaxed);
    }
    pub fn out_of_order(&self) {
        self.c.out_of_order.fetch_add(1, Relaxed);
    }
    pub fn unknown(&self) {
        self.c.unknown.fetch_add(1, Relaxed);
    }
    pub fn saved_event(&self) {
        self.c.saved_events.fetch_add(1, Relaxed);
    }
    pub fn other_event(&self) {
        self.c.other_events.fetch_add(1, Relaxed);
    }

    /// (offered, accepted, delivered) so far, for the per-second timeline.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.c.offered.load(Relaxed),
            self.c.accepted.load(Relaxed),
            self.c.delivered.load(Relaxed),
        )
    }

    /// Every accepted message reached all its recipients (duplicates aside).
    pub fn drained(&self) -> bool {
        self.c.delivered.load(Relaxed) >= self.c.expected_events.load(Relaxed)
    }

    /// The final figures, scanning every message for losses.
    pub fn summary(&self, window_secs: f64) -> Summary {
        let (mut lost_messages, mut lost_events, mut unaccepted_delivered, mut pending) =
            (0, 0, 0, 0);
        for log in &self.chats {
            let log = lock(log);
            for m in &log.msgs {
                let got = m.delivered.count_ones();
                match m.state {
                    ACCEPTED if got < log.recipients => {
                        lost_messages += 1;
                        lost_events += u64::from(log.recipients - got);
                    }
                    FAILED if got > 0 => unaccepted_delivered += 1,
                    PENDING => pending += 1,
                    _ => {}
                }
            }
        }
        let c = &self.c;
        let per_s = |n: u64| {
            if window_secs > 0.0 {
                n as f64 / window_secs
            } else {
                0.0
            }
        };
        Summary {
            window_secs,
            offered_per_s: per_s(c.offered_window.load(Relaxed)),
            accepted_per_s: per_s(c.accepted_window.load(Relaxed)),
            delivered_events_per_s: per_s(c.delivered_window.load(Relaxed)),
            offered: c.offered.load(Relaxed),
            accepted: c.accepted.load(Relaxed),
            failed: c.failed.load(Relaxed),
            expected_events: c.expected_events.load(Relaxed),
            delivered_events: c.delivered.load(Relaxed),
            lost_messages,
            lost_events,
            duplicated: c.duplicated.load(Relaxed),
            out_of_order: c.out_of_order.load(Relaxed),
            unknown_events: c.unknown.load(Relaxed),
            failed_but_delivered: unaccepted_delivered,
            unanswered: pending,
            saved_events: c.saved_events.load(Relaxed),
            other_events: c.other_events.load(Relaxed),
            e2e: Percentiles::of(&lock(&self.e2e)),
            accept: Percentiles::of(&lock(&self.accept)),
            errors: lock(&self.errors).clone(),
        }
    }
}

/// The message-flow figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub window_secs: f64,
    pub offered_per_s: f64,
    pub accepted_per_s: f64,
    pub delivered_events_per_s: f64,
    pub offered: u64,
    pub accepted: u64,
    pub failed: u64,
    pub expected_events: u64,
    pub delivered_events: u64,
    /// Accepted messages that some recipient never got within the grace period.
    pub lost_messages: u64,
    pub lost_events: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub unknown_events: u64,
    /// Sends answered with an error whose message was delivered anyway.
    pub failed_but_delivered: u64,
    pub unanswered: u64,
    pub saved_events: u64,
    pub other_events: u64,
    /// POST start → `chat.message.new` at the recipient.
    pub e2e: Percentiles,
    /// POST start → 202 received.
    pub accept: Percentiles,
    /// Failed sends by "status/code" (or "io/<error>").
    pub errors: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_duplicates_and_unknowns() {
        let t = Tracker::new(&[1, 2]).unwrap();
        t.set_window(0, u64::MAX - 1);
        let a = t.begin(0, 1).unwrap();
        let b = t.begin(1, 1).unwrap();
        let c = t.begin(1, 1).unwrap();
        t.finish(0, a, 1, Ok(()));
        t.finish(1, b, 1, Ok(()));
        t.finish(1, c, 1, Err("503/unavailable".into()));
        t.delivered(0, a, 0, 1);
        t.delivered(0, a, 0, 1);
        t.delivered(1, b, 1, 1);
        t.delivered(1, 9, 0, 1);
        assert!(!t.drained());
        let s = t.summary(1.0);
        assert_eq!((s.accepted, s.failed, s.delivered_events), (2, 1, 2));
        assert_eq!(
            (
                s.lost_messages,
                s.lost_events,
                s.duplicated,
                s.unknown_events
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(s.errors.get("503/unavailable"), Some(&1));
    }
}
