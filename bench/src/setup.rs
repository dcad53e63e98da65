//! Users and chats for a run, made through the REST API with bounded parallelism
//! (each worker task owns one keep-alive connection).
//!
//! Users are registered with `POST /auth/register` (Argon2 on the server, about
//! 20–40 ms of CPU each), or, for large counts, minted: rows inserted with `psql`
//! and HS256 access tokens signed here with the run's `JWT_SECRET` (see `mint`).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::http::{Conn, Response, bearer};

/// A user of the run and its access token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// A chat to create: its owner (who creates it and sends to it) and the others.
#[derive(Debug, Clone)]
pub struct ChatSpec {
    pub owner: usize,
    pub others: Vec<usize>,
    pub group: bool,
}

/// Tries of one setup request that failed for a transient reason (5xx, I/O).
const TRIES: usize = 5;

/// Runs `work(i)` for i in 0..count on `parallel` tasks, each with its own connection.
async fn parallel<T, F, Fut>(
    api: SocketAddr,
    count: usize,
    parallel: usize,
    work: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Conn, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Conn, anyhow::Result<T>)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.clamp(1, count.max(1)) {
        let (next, work) = (next.clone(), work.clone());
        tasks.spawn(async move {
            let mut conn = Conn::new(api);
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(out);
                }
                let (c, r) = work(conn, i).await;
                conn = c;
                out.push((i, r?));
            }
        });
    }
    let mut all: Vec<(usize, T)> = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// POSTs `body` until it is answered with a non-5xx status (bounded tries).
pub(crate) async fn post(
    conn: &mut Conn,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> anyhow::Result<Response> {
    let auth = token.map(bearer).transpose()?;
    let bytes = Bytes::from(serde_json::to_vec(body)?);
    let mut last = anyhow!("not tried");
    for attempt in 0..TRIES {
        match conn
            .request(Method::POST, path, auth.as_ref(), Some(bytes.clone()))
            .await
        {
            Ok(r) if !r.status.is_server_error() => return Ok(r),
            Ok(r) => last = anyhow!("{path}: {} {}", r.status, String::from_utf8_lossy(&r.body)),
            Err(e) => last = e.context(path.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await;
    }
    Err(last)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    user: IdOnly,
    access_token: String,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// The username of user `i` of run `tag` (3–32 of `[a-z0-9_.-]`).
pub fn username(tag: &str, i: usize) -> String {
    format!("b{tag}_{i}")
}

/// Registers `count` users through `POST /auth/register`.
pub async fn register(
    api: SocketAddr,
    tag: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<User>> {
    let tag = tag.to_string();
    parallel(api, count, concurrency, move |mut conn, i| {
        let body = json!({"username": username(&tag, i), "password": "bench-password", "displayName": format!("Bench {i}")});
        async move {
            let r = async {
                let r = post(&mut conn, "/auth/register", None, &body).await?;
                if r.status != StatusCode::CREATED {
                    bail!("register: {} {}", r.status, String::from_utf8_lossy(&r.body));
                }
                let reg: Registered = serde_json::from_slice(&r.body).context("register answer")?;
                Ok(User { id: reg.user.id, token: reg.access_token })
            }
            .await;
            (conn, r)
        }
    })
    .await
}

#[derive(Deserialize)]
struct ChatCreated {
    id: String,
}

/// Creates the chats (by their owners); returns their ids in `specs` order.
pub async fn create_chats(
    api: SocketAddr,
    users: Arc<Vec<User>>,
    specs: Arc<Vec<ChatSpec>>,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let count = specs.len();
    parallel(api, count, concurrency, move |mut conn, i| {
        let (users, specs) = (users.clone(), specs.clone());
        async move {
            let r = async {
                let spec = &specs[i];
                let ids: Vec<&str> = spec.others.iter().map(|u| users[*u].id.as_str()).collect();
                let body = if spec.group {
                    json!({"type": "group", "title": format!("bench group {i}"), "participantIds": ids})
                } else {
                    json!({"type": "direct", "participantIds": ids})
                };
                let r = post(&mut conn, "/chats", Some(&users[spec.owner].token), &body).await?;
                if !r.status.is_success() {
                    bail!("create chat: {} {}", r.status, String::from_utf8_lossy(&r.body));
                }
                Ok(serde_json::from_slice::<ChatCreated>(&r.body).context("chat answer")?.id)
            }
            .await;
            (conn, r)
        }
    })
    .await
}
