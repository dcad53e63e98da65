//! Courier: a queue-backed realtime chat delivery backend.
//!
//! `api` accepts sends and publishes them to RabbitMQ, `worker` persists them in
//! PostgreSQL and routes notifications through Redis, `gateway` emits them over
//! Socket.IO. Each role is a [`server::Service`]: `build(config)` binds, and
//! `run_until_stopped(shutdown)` serves until the shutdown signal.

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod health;
pub mod mq;
pub mod server;
pub mod telemetry;
pub mod worker;

pub mod all_in_one;
