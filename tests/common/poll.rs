//! Waiting for something observable (a row, a message in history) in tests: the probe
//! is asked again every 50 ms, for at most 10 s.

use std::{future::Future, time::Duration};

/// The first `Some` the probe returns; panics naming `what` after 10 s.
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits until an event with offset `ms` (its id's milliseconds) is older than a
/// retention `window` by this process's clock: what the stream sweep checks.
pub async fn until_older_than(ms: u64, window: Duration) {
    let due = ms as i64 + window.as_millis() as i64;
    until("the event to age past the window", || async {
        (chrono::Utc::now().timestamp_millis() > due).then_some(())
    })
    .await
}
