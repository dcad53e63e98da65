//! The `pusher` role of Courier (see `courier::pusher`; `pusher --help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    courier::cli::role_args(courier::cli::Role::Pusher);
    courier::cli::run_role(courier::cli::Role::Pusher).await
}
