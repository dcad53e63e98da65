//! Logging through `tracing` (JSON lines on stderr, `LOG_FORMAT=pretty` for humans,
//! filtered by `RUST_LOG`, default `info`) and Prometheus metrics (`/metrics`).

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "pretty");
    let registry = tracing_subscriber::registry().with(filter);
    let result = if pretty {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    drop(result);
}

/// Latency buckets (seconds) shared by every histogram.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often the recorder folds recorded histogram samples into its buckets.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How many upkeep runs have completed in this process (what a test waits for).
pub static UPKEEP_RUNS: AtomicU64 = AtomicU64::new(0);

/// The process-wide Prometheus recorder (installed on first use), with its upkeep:
/// a histogram keeps every sample until upkeep (or a scrape) folds it into the
/// buckets, so without it a process nobody scrapes grows with every request.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), &SIZE_BUCKETS));
        match builder.and_then(|b| b.install_recorder()) {
            Ok(h) => {
                let upkeep = h.clone();
                let spawned = std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP_EVERY);
                            upkeep.run_upkeep();
                            UPKEEP_RUNS.fetch_add(1, Ordering::Release);
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "metrics upkeep not started: histograms grow until scraped");
                }
                h
            }
            Err(e) => {
                // Another recorder is installed: metrics go there; render an empty page.
                tracing::warn!(error = %e, "prometheus recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics_endpoint() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics_handle().render(),
    )
}

/// The route template a request matched (`/hooks/{hook_id}/{token}`), `unmatched` for none:
/// what metrics and logs name a request by, never its path (which can hold a secret).
pub fn route<B>(req: &axum::http::Request<B>) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// Counts and times every HTTP request by route template, method and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route(&req).to_string();
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("courier_http_requests_total", &labels).increment(1);
    metrics::histogram!("courier_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}
