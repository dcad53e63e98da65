//! The `gateway` role of Courier (see `courier::gateway`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::run_role(courier::cli::Role::Gateway).await
}
