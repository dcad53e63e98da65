//! Group commit: every partition consumer hands its batch to one persister task,
//! which merges whatever batches are waiting into a single transaction. Each
//! consumer waits for its own result before taking more deliveries, so per-chat
//! order holds; one transaction per round instead of one per partition keeps
//! PostgreSQL's per-commit cost (statements, fsync) from growing with partitions.
//! At everyday load batches are of one or two, so a small round waits up to
//! the linger for more before committing: fewer, larger transactions for a
//! millisecond of latency (`WORKER_COMMIT_LINGER_MS`).

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    db::{self, messages::Outcome},
    domain::message::SendCommand,
};

/// Most commands merged into one transaction.
const GROUP_MAX: usize = 2048;
/// A round this large commits at once; a smaller one waits up to the linger for more.
const LINGER_BELOW: usize = 16;

pub type PersistResult = Result<Vec<Outcome>, Arc<sqlx::Error>>;

struct Job {
    cmds: Vec<SendCommand>,
    reply: oneshot::Sender<PersistResult>,
}

#[derive(Clone)]
pub struct Persister {
    tx: mpsc::Sender<Job>,
}

impl Persister {
    /// The handle, and the task to run (it ends when every handle is dropped).
    pub fn new(
        pool: PgPool,
        linger: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(1024);
        (Self { tx }, run(pool, rx, linger))
    }

    /// Persists `cmds` (in one transaction, possibly shared with other batches).
    pub async fn persist(&self, cmds: Vec<SendCommand>) -> PersistResult {
        let (reply, rx) = oneshot::channel();
        let closed = || Arc::new(sqlx::Error::PoolClosed);
        self.tx
            .send(Job { cmds, reply })
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>, linger: Duration) {
    while let Some(first) = rx.recv().await {
        let linger_until = Instant::now() + linger;
        let mut jobs = vec![first];
        let mut size = jobs[0].cmds.len();
        while size < GROUP_MAX {
            let job = match rx.try_recv() {
                Ok(job) => job,
                Err(_) if size >= LINGER_BELOW || linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(linger_until, rx.recv()).await {
                    Ok(Some(job)) => job,
                    _ => break,
                },
            };
            size += job.cmds.len();
            jobs.push(job);
        }
        metrics::histogram!("courier_worker_commit_size").record(size as f64);
        settle(&pool, jobs).await;
    }
}

async fn settle(pool: &PgPool, jobs: Vec<Job>) {
    if jobs.len() == 1 {
        for job in jobs {
            let result = db::messages::persist_batch(pool, &job.cmds)
                .await
                .map_err(Arc::new);
            answer(job, result);
        }
        return;
    }
    let all: Vec<SendCommand> = jobs.iter().flat_map(|j| j.cmds.iter().cloned()).collect();
    match db::messages::persist_batch(pool, &all).await {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for job in jobs {
                let mine: Vec<Outcome> = outcomes.by_ref().take(job.cmds.len()).collect();
                answer(job, Ok(mine));
            }
        }
        Err(e) if db::is_outage(&e) => {
            let e = Arc::new(e);
            for job in jobs {
                answer(job, Err(e.clone()));
            }
        }
        // One batch's own failure must not fail the others: settle each alone.
        Err(_) => {
            for job in jobs {
                let result = db::messages::persist_batch(pool, &job.cmds)
                    .await
                    .map_err(Arc::new);
                answer(job, result);
            }
        }
    }
}

fn answer(job: Job, result: PersistResult) {
    if job.reply.send(result).is_err() {
        // The consumer stopped waiting (shutdown): its deliveries stay unacked and
        // are redelivered; persistence is idempotent.
        tracing::debug!("persist result not collected");
    }
}
