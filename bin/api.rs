//! The `api` role of Courier (see `courier::api`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::run_role(courier::cli::Role::Api).await
}
