//! A bound HTTP listener plus background tasks, run until one shutdown signal.

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

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
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop_http.cancelled().await })
        .await;
        stop.cancel();
        drained.cancel();
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!(role = name, "background tasks did not finish in time");
        }
        tracing::info!(role = name, "stopped");
        served.map_err(Into::into)
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
