//! The metrics recorder's memory stays bounded in a process nobody scrapes: its
//! histograms keep each sample until upkeep folds them into buckets, and upkeep runs
//! on its own (issue 15: without it an api or worker grew about 1.3 MB a minute).
//! Live heap bytes are read from jemalloc, Courier's allocator.

use std::time::{Duration, Instant};

use courier::telemetry::UPKEEP_EVERY;
use tikv_jemalloc_ctl::{epoch, stats};

const MB: f64 = 1024.0 * 1024.0;

fn allocated() -> f64 {
    epoch::advance().expect("jemalloc epoch");
    stats::allocated::read().expect("jemalloc stats") as f64
}

#[test]
fn histogram_samples_are_folded_without_a_scrape() {
    courier::telemetry::metrics_handle();
    let latency = metrics::histogram!("courier_test_latency_seconds");
    // A busy process nobody scrapes: 400,000 samples a second (3.2 MB a second as raw
    // samples) for five upkeep periods; heap use is read after the first period and at
    // the end. Kept, the samples would add 25 MB between the two readings.
    let per_tick = 40_000u32;
    let tick = Duration::from_millis(100);
    let start = Instant::now();
    let mut first = None;
    while start.elapsed() < UPKEEP_EVERY * 5 {
        let t = Instant::now();
        for i in 0..per_tick {
            latency.record(f64::from(i % 1000) / 1000.0);
        }
        if first.is_none() && start.elapsed() >= UPKEEP_EVERY {
            first = Some(allocated());
        }
        // Pacing of the load, not waiting for the server.
        std::thread::sleep(tick.saturating_sub(t.elapsed()));
    }
    let (first, last) = (first.unwrap_or_default(), allocated());
    let grown = (last - first) / MB;
    println!(
        "heap after one upkeep period {:.1} MB, after five {:.1} MB",
        first / MB,
        last / MB
    );
    assert!(
        grown < 8.0,
        "the recorder grew {grown:.1} MB over four upkeep periods without a scrape"
    );
}
