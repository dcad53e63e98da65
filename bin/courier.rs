//! Courier in one process: `courier` runs API, worker and gateway on `PORT`;
//! `courier migrate` creates the database if needed and runs the migrations.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => courier::cli::run_role(courier::cli::Role::AllInOne).await,
        Some("migrate") => courier::cli::migrate().await,
        Some(other) => {
            eprintln!("courier: unknown command {other:?} (expected: serve, migrate)");
            std::process::ExitCode::from(2)
        }
    }
}
