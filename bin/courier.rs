//! Courier in one process: `courier` runs API, worker and gateway on `PORT`;
//! `courier migrate` creates the database if needed and runs the migrations;
//! `courier dlq list|replay|count` inspects and replays dead-lettered messages
//! `courier admin grant|revoke <username>` grants or revokes the global admin role;
//! `courier push vapid-keys` prints a new VAPID key pair for `.env` (`courier --help`).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::courier(courier::cli::Courier::parse()).await
}
