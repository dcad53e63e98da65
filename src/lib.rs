//! Courier: a queue-backed realtime chat delivery backend.
//!
//! `api` accepts sends and publishes them to RabbitMQ, `worker` persists them in
//! PostgreSQL and routes notifications through Redis, `gateway` emits them over
//! Socket.IO. Each role is a [`server::Service`]: `build(config)` binds, and
//! `run_until_stopped(shutdown)` serves until the shutdown signal.

pub mod api;
pub mod auth;
pub mod backoff;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod health;
pub mod http;
pub mod mq;
pub mod push;
pub mod pusher;
pub mod server;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod worker;

pub mod all_in_one;

/// jemalloc for every Courier process. Measured with `scripts/bench.sh throughput`
/// against glibc malloc: api CPU per message 154 → 142 µs, worker 73 → 48 µs, and the
/// api's RSS after 1,100 registrations 750 MB → 31 MB (glibc kept the Argon2 blocks
/// in per-thread arenas). An idle socket costs the gateway ~5 KB more (35.6 vs 30 KB).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the environment
/// overrides them). A background thread returns freed pages to the system about a
/// second after they are freed: without it jemalloc purges only when the process
/// allocates again, so a gateway whose 10,000 sockets closed kept 330 MB of freed
/// memory while idle (`scripts/bench.sh idle --cycles 3`).
#[used]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static JEMALLOC_CONF: &[u8; 43] = b"background_thread:true,dirty_decay_ms:1000\0";
