//! A bound HTTP listener plus background tasks, run until one shutdown signal.

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A client must send a whole request head within this time. hyper runs the same timer
/// while a keep-alive connection waits for its next request, so an idle keep-alive
/// connection is closed after it too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `HTTP_MAX_CONNECTIONS` unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 25_000;

/// Serves HTTP/1.1 (with upgrades, for WebSocket) on `listener` until `stop`: a header
/// read timeout on every connection, at most `max_connections` at once (an upgraded
/// WebSocket no longer counts), and at `stop` no new connection while those open finish
/// their requests and close.
async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    max_connections: usize,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    // Turn every route into its service once, as `axum::serve` does: a router called
    // unprepared applies its layers again on each call, and a fresh Socket.IO layer
    // would be a fresh engine without the sessions of the one before.
    let router: Router = router.with_state(());
    let tracker = tokio_util::task::TaskTracker::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = router.clone();
        let svc = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(req)
            },
        );
        let conn = http
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        let stop = stop.clone();
        tracker.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// How long background tasks get to finish after the signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A built role: already bound (so tests can use port 0), not yet serving.
pub struct Service {
    pub name: &'static str,
    listener: TcpListener,
    router: Router,
    /// Cancelled when the service stops; every background task watches it.
    pub stop: CancellationToken,
    /// Cancelled once HTTP has stopped and in-flight requests have finished
    /// (what they still need, like the API's broker link, closes on this).
    pub drained: CancellationToken,
    tasks: Vec<Task>,
    /// Where `/metrics` is served (`METRICS_PORT`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// `HTTP_MAX_CONNECTIONS`: connections served at once; more wait in the backlog.
    pub max_connections: usize,
}

impl Service {
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        router: Router,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: cannot listen on {addr}: {e}"))?;
        Ok(Self {
            name,
            listener,
            router,
            stop,
            drained: CancellationToken::new(),
            tasks: Vec::new(),
            metrics_addr: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Adds a background task (started by `run_until_stopped`).
    pub fn spawn_on_run(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(Box::pin(task));
    }

    /// Serves until `shutdown` resolves, then stops gracefully: stops accepting,
    /// finishes in-flight requests, lets background tasks finish (bounded).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Service {
            name,
            listener,
            router,
            stop,
            drained,
            tasks,
            metrics_addr: _,
            max_connections,
        } = self;
        let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
        let stop_http = stop.clone();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });
        tracing::info!(role = name, addr = %listener.local_addr()?, "listening");
        serve(listener, router, stop_http, max_connections).await;
        stop.cancel();
        drained.cancel();
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!(role = name, "background tasks did not finish in time");
        }
        tracing::info!(role = name, "stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

impl Service {
    /// Serves `/metrics` on `METRICS_HOST:METRICS_PORT`, a listener of its own (never the
    /// public port), until the service stops. Nothing when `METRICS_PORT` is unset.
    pub async fn serve_metrics(&mut self, config: &crate::config::Config) -> anyhow::Result<()> {
        let Some(addr) = config.metrics_addr else {
            return Ok(());
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {addr}: {e}"))?;
        self.metrics_addr = Some(listener.local_addr()?);
        let router = Router::new().route(
            "/metrics",
            axum::routing::get(crate::telemetry::metrics_endpoint),
        );
        let stop = self.stop.clone();
        self.spawn_on_run(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
        Ok(())
    }

    /// Replaces the router (for roles whose routes need what building them produced).
    pub fn with_router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }
}
