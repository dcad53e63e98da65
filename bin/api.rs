//! The `api` role of Courier (see `courier::api`; `api --help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::role_args(courier::cli::Role::Api);
    courier::cli::run_role(courier::cli::Role::Api).await
}
