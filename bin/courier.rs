//! Courier in one process: `courier` runs API, worker and gateway on `PORT`;
//! `courier migrate` creates the database if needed and runs the migrations;
//! `courier dlq list|replay|count` inspects and replays dead-lettered messages.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => courier::cli::run_role(courier::cli::Role::AllInOne).await,
        Some("migrate") => courier::cli::migrate().await,
        Some("dlq") => courier::cli::dlq(&args[1..]).await,
        Some(other) => {
            eprintln!("courier: unknown command {other:?} (expected: serve, migrate, dlq)");
            std::process::ExitCode::from(2)
        }
    }
}
