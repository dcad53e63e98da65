//! Exponential backoff with full jitter: the one way every reconnect and retry loop
//! waits (RabbitMQ link, Redis connect and resubscribe, the worker's outage loops,
//! the gateway's stream reads).
//!
//! The n-th wait (from 0) is drawn uniformly from `[0, min(cap, base × 2ⁿ)]`
//! ("full jitter", AWS Architecture Blog, "Exponential Backoff And Jitter"), so the
//! processes that lost the same dependency at once do not come back in step.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// The delays of one retry loop. `reset` once the operation succeeded.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Waits grow from up to `base` to up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The longest the next wait can be: `base × 2^attempt`, at most `cap`.
    pub fn ceiling(&self) -> Duration {
        1u32.checked_shl(self.attempt)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The next wait: uniform in `[0, ceiling]`; the ceiling then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        if ceiling < self.cap {
            self.attempt += 1;
        }
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }

    /// Back to waits of up to `base` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Resets if the operation that just failed had been up for `ran` of at least the
    /// cap: a connection lost after a healthy run is retried quickly again.
    pub fn reset_after(&mut self, ran: Duration) {
        if ran >= self.cap {
            self.reset();
        }
    }

    /// Sleeps the next wait; `false` if `stop` was cancelled first.
    pub async fn wait(&mut self, stop: &CancellationToken) -> bool {
        pause(self.next_delay(), stop).await
    }
}

/// Sleeps `delay`; `false` if `stop` was cancelled first.
pub async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceilings_double_from_base_up_to_the_cap_and_stay() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay();
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
    }

    #[test]
    fn every_delay_is_within_zero_and_its_ceiling() {
        let mut b = Backoff::new(10 * MS, 300 * MS);
        for _ in 0..200 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d <= ceiling, "{d:?} over its ceiling {ceiling:?}");
            assert!(d <= 300 * MS, "{d:?} over the cap");
        }
    }

    #[test]
    fn delays_are_jittered_over_the_whole_range() {
        // 2,000 draws under one ceiling: not all alike, and both halves of [0, cap] hit
        // (no jitter, or jitter only on top of the ceiling, fails this).
        let mut b = Backoff::new(1000 * MS, 1000 * MS);
        let draws: Vec<Duration> = (0..2000).map(|_| b.next_delay()).collect();
        assert!(
            draws.iter().any(|d| *d < 500 * MS),
            "nothing in the lower half"
        );
        assert!(
            draws.iter().any(|d| *d > 500 * MS),
            "nothing in the upper half"
        );
        let first = draws[0];
        assert!(draws.iter().any(|d| *d != first), "no jitter");
    }

    #[test]
    fn reset_starts_over_and_reset_after_only_after_a_healthy_run() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset_after(999 * MS);
        assert_eq!(b.ceiling(), 1000 * MS, "a short run keeps backing off");
        b.reset_after(1000 * MS);
        assert_eq!(b.ceiling(), 100 * MS);
        b.next_delay();
        b.reset();
        assert_eq!(b.ceiling(), 100 * MS);
    }

    #[test]
    fn huge_caps_and_many_attempts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::MAX);
    }

    #[tokio::test]
    async fn wait_sleeps_and_stops_on_cancel() {
        let stop = CancellationToken::new();
        let mut b = Backoff::new(20 * MS, 20 * MS);
        assert!(b.wait(&stop).await);
        stop.cancel();
        let mut long = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
        assert!(!long.wait(&stop).await, "a cancelled stop ends the wait");
    }
}
