//! The metrics recorder's memory stays bounded in a process nobody scrapes: its
//! histograms keep each sample until upkeep folds them into buckets, and upkeep runs
//! on its own (issue 15: without it an api or worker grew about 1.3 MB a minute).
//! Live heap bytes are read from jemalloc, Courier's allocator.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use courier::telemetry::{UPKEEP_EVERY, UPKEEP_RUNS};
use tikv_jemalloc_ctl::{epoch, stats};

const MB: f64 = 1024.0 * 1024.0;

fn allocated() -> f64 {
    epoch::advance().expect("jemalloc epoch");
    stats::allocated::read().expect("jemalloc stats") as f64
}

/// Records `per_tick` samples every 100 ms until upkeep has completed `runs` more
/// times (counted by the upkeep thread itself), then reads the heap at once.
fn record_until_upkeep(latency: &metrics::Histogram, runs: u64) -> f64 {
    let per_tick = 40_000u32;
    let tick = Duration::from_millis(100);
    let until = UPKEEP_RUNS.load(Ordering::Acquire) + runs;
    let deadline = Instant::now() + UPKEEP_EVERY * (runs as u32 + 10);
    while UPKEEP_RUNS.load(Ordering::Acquire) < until {
        assert!(Instant::now() < deadline, "upkeep did not run");
        let t = Instant::now();
        for i in 0..per_tick {
            latency.record(f64::from(i % 1000) / 1000.0);
        }
        // Pacing of the load, not waiting for the server.
        std::thread::sleep(tick.saturating_sub(t.elapsed()));
    }
    allocated()
}

#[test]
fn histogram_samples_are_folded_without_a_scrape() {
    courier::telemetry::metrics_handle();
    let latency = metrics::histogram!("courier_test_latency_seconds");
    // A busy process nobody scrapes: 400,000 samples a second (3.2 MB a second as raw
    // samples). Heap use is read right after an upkeep run, then after each of 15 more
    // (~30 s): kept, the samples would add ~96 MB. Folded blocks are freed a little
    // later (the histogram's buckets are epoch-reclaimed), so a reading right after a
    // run may still hold up to a few periods' samples: bounded, not growing.
    let first = record_until_upkeep(&latency, 1);
    let mut readings = Vec::new();
    for _ in 0..15 {
        readings.push(record_until_upkeep(&latency, 1) / MB);
    }
    let last = readings[readings.len() - 1];
    let grown = last - first / MB;
    println!(
        "heap after one upkeep run {:.1} MB, then {readings:.1?}",
        first / MB
    );
    assert!(
        grown < 40.0,
        "the recorder grew {grown:.1} MB over 15 upkeep periods without a scrape"
    );
}
