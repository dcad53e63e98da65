//! A supervised RabbitMQ connection: connects, declares the topology, and when the
//! connection drops, tells its watchers and reconnects with backoff (full jitter)
//! until shutdown. The last cause of a drop or failed reconnect is kept for `/readyz`.
//! With several nodes (`RABBITMQ_URIS`) each process starts at a random node and,
//! when its node is lost or refuses, moves to the next one (round-robin).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Topology;
use crate::{backoff::Backoff, config::RabbitConfig};

/// Reconnect waits: up to 200 ms at first, doubling to up to 5 s.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// How long connecting, declaring the topology and opening the publishing channel may
/// take (a node that lost its quorum may leave a declaration unanswered).
const SETUP: Duration = Duration::from_secs(20);

/// One live connection with a confirm-mode channel for publishing.
pub struct Session {
    pub conn: Connection,
    pub publish: Channel,
}

impl Session {
    pub fn is_up(&self) -> bool {
        self.conn.status().connected() && self.publish.status().connected()
    }
}

#[derive(Clone)]
pub struct Link {
    rx: watch::Receiver<Option<Arc<Session>>>,
    /// Why the link last went down or failed to reconnect (TLS causes named by
    /// [`super::connect::cause`]); `None` before any failure.
    cause: watch::Receiver<Option<String>>,
}

impl Link {
    /// Starts the supervisor task. The link is down until the first connection.
    pub fn spawn(
        config: RabbitConfig,
        topology: Topology,
        name: &str,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let (cause_tx, cause) = watch::channel(None);
        let name = name.to_string();
        let task = tokio::spawn(supervise(config, topology, name, tx, cause_tx, shutdown));
        (Self { rx, cause }, task)
    }

    /// Why the link last went down or failed to reconnect, if it ever did.
    pub fn last_cause(&self) -> Option<String> {
        self.cause.borrow().clone()
    }

    /// [`Self::last_cause`], waiting up to `patience` for one: a probe may see the
    /// connection down a moment before the supervisor has learned why.
    pub async fn cause_within(&self, patience: Duration) -> Option<String> {
        let mut rx = self.cause.clone();
        match tokio::time::timeout(patience, rx.wait_for(Option::is_some)).await {
            Ok(Ok(cause)) => cause.clone(),
            _ => self.last_cause(),
        }
    }

    /// The current session, if connected.
    pub fn current(&self) -> Option<Arc<Session>> {
        self.rx.borrow().as_ref().filter(|s| s.is_up()).cloned()
    }

    pub fn is_up(&self) -> bool {
        self.current().is_some()
    }

    /// Waits for a connected session (or the link's end).
    pub async fn next_session(&mut self) -> Option<Arc<Session>> {
        loop {
            if let Some(s) = self.current() {
                return Some(s);
            }
            self.rx.changed().await.ok()?;
        }
    }

    /// The connected session, waiting up to `timeout` for one (`None`: none came).
    pub async fn session_within(&mut self, timeout: Duration) -> Option<Arc<Session>> {
        tokio::time::timeout(timeout, self.next_session())
            .await
            .ok()
            .flatten()
    }

    /// Waits up to `timeout` for a connected session.
    pub async fn wait_up(&mut self, timeout: Duration) -> bool {
        self.session_within(timeout).await.is_some()
    }
}

/// Connects (through [`super::connect::open`], as every reconnect does), declares the
/// topology and opens the confirm-mode publishing channel.
async fn connect(
    config: &RabbitConfig,
    topology: &Topology,
    node: usize,
    name: &str,
) -> anyhow::Result<Session> {
    let conn = super::connect::open_node(config, node, name).await?;
    topology.declare(&conn).await?;
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(Session { conn, publish })
}

/// The words of a connection error: the TLS cause when it is one, else its text.
fn describe(e: &lapin::Error) -> String {
    super::connect::cause(e).unwrap_or_else(|| e.to_string())
}

async fn supervise(
    config: RabbitConfig,
    topology: Topology,
    name: String,
    tx: watch::Sender<Option<Arc<Session>>>,
    cause: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
) {
    let mut backoff = RECONNECT;
    let nodes = config.uris.len().max(1);
    let mut node = rand::random_range(0..nodes);
    while !shutdown.is_cancelled() {
        let attempt = tokio::time::timeout(SETUP, connect(&config, &topology, node, &name));
        let attempt = attempt.await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "no answer within {}s while declaring the topology",
                SETUP.as_secs()
            ))
        });
        match attempt {
            Ok(session) => {
                tracing::info!(%name, node, nodes, "rabbitmq connected, topology declared");
                backoff.reset();
                cause.send_replace(None);
                let session = Arc::new(session);
                let mut events = session.conn.events_listener();
                tx.send_replace(Some(session.clone()));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            tx.send_replace(None);
                            if let Err(e) = session.conn.close(200, "shutdown".into()).await {
                                tracing::debug!(error = %e, "closing rabbitmq connection");
                            }
                            return;
                        }
                        Some(event) = events.next() => {
                            if let lapin::Event::Error(e) = event {
                                cause.send_replace(Some(describe(&e)));
                            }
                        }
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if !session.is_up() { break; }
                        }
                    }
                }
                let why = cause
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the connection was closed".into());
                tracing::warn!(%name, node, dependency = "rabbitmq", cause = %why, "rabbitmq connection lost, reconnecting");
                cause.send_replace(Some(why));
                tx.send_replace(None);
            }
            Err(e) => {
                // A connect error's text already holds its source; others need the chain.
                let why = match e.downcast_ref::<super::connect::ConnectError>() {
                    Some(c) => c.to_string(),
                    None => format!("{e:#}"),
                };
                tracing::warn!(%name, node, dependency = "rabbitmq", cause = %why, "rabbitmq connect failed");
                cause.send_replace(Some(why));
            }
        }
        // The node was lost or refused: the next attempt goes to the next one.
        node = (node + 1) % nodes;
        if !backoff.wait(&shutdown).await {
            return;
        }
    }
}
