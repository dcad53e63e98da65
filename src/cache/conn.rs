//! The connection every Redis command goes through: one self-reconnecting connection
//! manager to `REDIS_URL` (or the parts), or, under Redis Sentinel, the one to the
//! current master, with commands that fail because the master went away asking the
//! sentinels again, or, in Redis Cluster mode, the cluster connection.

use std::sync::Arc;

use redis::{
    Client, Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
};
use tokio::sync::watch;

use super::{cluster::Cluster, sentinel::Router};

/// A shared connection (cheap to clone), used as `redis::aio::ConnectionLike`.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    db: i64,
}

#[derive(Clone)]
enum Inner {
    Direct(Arc<(ConnectionManager, Client)>),
    Sentinel(Arc<Router>),
    Cluster(Arc<Cluster>),
}

impl RedisConn {
    pub fn direct(conn: ConnectionManager, client: Client, db: i64) -> Self {
        Self {
            inner: Inner::Direct(Arc::new((conn, client))),
            db,
        }
    }

    pub fn sentinel(router: Arc<Router>, db: i64) -> Self {
        Self {
            inner: Inner::Sentinel(router),
            db,
        }
    }

    pub fn cluster(cluster: Arc<Cluster>) -> Self {
        Self {
            inner: Inner::Cluster(cluster),
            db: 0,
        }
    }

    /// The cluster, in Redis Cluster mode.
    pub fn as_cluster(&self) -> Option<&Cluster> {
        match &self.inner {
            Inner::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// A client of the server (the current master under Sentinel, a seed node of a
    /// cluster).
    pub fn client(&self) -> Client {
        match &self.inner {
            Inner::Direct(d) => d.1.clone(),
            Inner::Sentinel(r) => r.client(),
            Inner::Cluster(c) => c.client(),
        }
    }

    /// Tells the sentinels' follower the master may be gone, or the cluster to use its
    /// next seed node (a pub/sub connection failed); nothing on one server.
    pub fn lost(&self) {
        match &self.inner {
            Inner::Direct(_) => {}
            Inner::Sentinel(r) => r.lost(),
            Inner::Cluster(c) => c.lost(),
        }
    }

    /// Changes whenever the master changed (`None` without Sentinel: never).
    pub fn changes(&self) -> Option<watch::Receiver<u64>> {
        match &self.inner {
            Inner::Direct(_) | Inner::Cluster(_) => None,
            Inner::Sentinel(r) => Some(r.changes()),
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Direct(d) => {
                let mut c = d.0.clone();
                Box::pin(async move { c.req_packed_command(cmd).await })
            }
            Inner::Sentinel(r) => {
                let r = r.clone();
                Box::pin(async move {
                    let mut c = r.conn();
                    let result = c.req_packed_command(cmd).await;
                    r.check(&result);
                    result
                })
            }
            Inner::Cluster(c) => {
                let c = c.clone();
                Box::pin(async move { c.command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Direct(d) => {
                let mut c = d.0.clone();
                Box::pin(async move { c.req_packed_commands(pipeline, offset, count).await })
            }
            Inner::Sentinel(r) => {
                let r = r.clone();
                Box::pin(async move {
                    let mut c = r.conn();
                    let result = c.req_packed_commands(pipeline, offset, count).await;
                    r.check(&result);
                    result
                })
            }
            Inner::Cluster(c) => {
                let c = c.clone();
                Box::pin(async move { c.pipeline(pipeline, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

/// Waits until the master changes (forever without Sentinel).
pub async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
