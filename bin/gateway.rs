//! The `gateway` role of Courier (see `courier::gateway`; `gateway --help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::role_args(courier::cli::Role::Gateway);
    courier::cli::run_role(courier::cli::Role::Gateway).await
}
