//! What the thin binaries call: their command lines (clap), then load config, build a
//! role, run it until a signal.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum, builder::RangedU64ValueParser};

use crate::{config::Config, server};

#[derive(Debug, Clone, Copy)]
pub enum Role {
    Api,
    Worker,
    Gateway,
    Pusher,
    AllInOne,
}

fn load() -> Result<Config, ExitCode> {
    crate::telemetry::init();
    crate::tls::install_crypto_provider();
    Config::from_env().map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(78)
    })
}

pub async fn run_role(role: Role) -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let built = match role {
        Role::Api => crate::api::build(&config).await,
        Role::Worker => crate::worker::build(&config).await,
        Role::Gateway => crate::gateway::build(&config).await,
        Role::Pusher => crate::pusher::build(&config).await,
        Role::AllInOne => crate::all_in_one::build(&config).await,
    };
    let service = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{role:?}: cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match service.run_until_stopped(server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role:?}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn migrate() -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::db::migrate(&config).await {
        Ok(()) => {
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `courier`: the all-in-one process and the operator's commands.
#[derive(Debug, Parser)]
#[command(
    name = "courier",
    version,
    about = "Courier in one process: REST API, worker and Socket.IO gateway on PORT",
    long_about = "Courier in one process: REST API, worker and Socket.IO gateway on PORT \
                  (without a command, `serve`). Configured by environment variables \
                  (docs/configuration.md); a .env file in the working directory is read too."
)]
pub struct Courier {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs API, worker and gateway on PORT (the default)
    Serve,
    /// Creates the database if it is missing and runs the migrations
    Migrate,
    /// Inspects and replays dead-lettered messages; prints JSON
    Dlq(DlqArgs),
    /// Grants or revokes the global admin role (recorded in the audit log)
    Admin(AdminArgs),
    /// Push notification tools
    #[command(subcommand)]
    Push(PushCommand),
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Prints a new VAPID key pair as PUSH_VAPID_PUBLIC_KEY=... and
    /// PUSH_VAPID_PRIVATE_KEY=... lines for .env
    VapidKeys,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// What to do
    #[arg(value_enum)]
    pub action: AdminAction,
    /// The user's username
    pub username: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminAction {
    /// Makes the user an admin
    Grant,
    /// Makes the admin a plain user again
    Revoke,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    /// What to do
    #[arg(value_enum)]
    pub action: DlqAction,
    /// At most this many messages (list, replay)
    #[arg(long, default_value_t = 100, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub limit: usize,
    /// Only the message with this broker message id (replay)
    #[arg(long, value_name = "BROKER_MESSAGE_ID")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DlqAction {
    /// The messages, left in place (brokerMessageId, reason, attempts, lastError,
    /// sourceQueue, body)
    List,
    /// Republishes each into its partition, then removes it from the DLQ
    Replay,
    /// How many messages wait in the DLQ
    Count,
}

/// Runs what `courier`'s arguments ask for.
pub async fn courier(args: Courier) -> ExitCode {
    match args.command.unwrap_or(Command::Serve) {
        Command::Serve => run_role(Role::AllInOne).await,
        Command::Migrate => migrate().await,
        Command::Dlq(dlq_args) => dlq(&dlq_args).await,
        Command::Admin(admin_args) => admin(&admin_args).await,
        Command::Push(PushCommand::VapidKeys) => {
            println!("{}", vapid_keys());
            ExitCode::SUCCESS
        }
    }
}

/// `courier push vapid-keys`: a new key pair as two `.env` lines (no configuration read).
pub fn vapid_keys() -> String {
    let (public, private) = crate::push::vapid::generate();
    format!("PUSH_VAPID_PUBLIC_KEY={public}\nPUSH_VAPID_PRIVATE_KEY={private}")
}

/// The arguments of a single-role binary (`api`, `worker`, `gateway`): none but
/// `--help` and `--version`.
pub fn role_args(role: Role) {
    let (name, about) = match role {
        Role::Api => ("api", "Courier's REST API on PORT"),
        Role::Worker => (
            "worker",
            "Courier's worker: persists and routes messages from RabbitMQ",
        ),
        Role::Gateway => (
            "gateway",
            "Courier's Socket.IO and SSE gateway on GATEWAY_PORT",
        ),
        Role::Pusher => (
            "pusher",
            "Courier's pusher: Web Push and FCM notifications for members who are not connected",
        ),
        Role::AllInOne => ("courier", "Courier in one process"),
    };
    clap::Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .after_help("Configured by environment variables (docs/configuration.md).")
        .get_matches();
}

/// `courier dlq list|replay|count [--limit N] [--id BROKER_MESSAGE_ID]`: prints JSON.
pub async fn dlq(args: &DlqArgs) -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match args.action {
        DlqAction::List => crate::mq::dlq::list(&config, args.limit)
            .await
            .and_then(|l| Ok(serde_json::to_string_pretty(&l)?)),
        DlqAction::Replay => crate::mq::dlq::replay(&config, args.limit, args.id.as_deref())
            .await
            .and_then(|r| Ok(serde_json::to_string(&r)?)),
        DlqAction::Count => crate::mq::dlq::depth(&config)
            .await
            .map(|n| format!("{{\"count\":{n}}}")),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dlq: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `courier admin grant|revoke <username>`: one line on stdout and exit 0, or one
/// line on stderr and exit 1 (an unknown user, an unreachable database).
pub async fn admin(args: &AdminArgs) -> ExitCode {
    use crate::{domain::moderation::GlobalRole, service::moderation};
    let config = match load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let role = match args.action {
        AdminAction::Grant => GlobalRole::Admin,
        AdminAction::Revoke => GlobalRole::User,
    };
    let pool = match crate::db::pool(&config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("admin: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = moderation::set_role(&pool, &args.username, role).await;
    pool.close().await;
    let name = &args.username;
    let what = match role {
        GlobalRole::Admin => "an admin",
        GlobalRole::User => "not an admin",
    };
    match outcome {
        Ok(moderation::RoleOutcome::Changed(id)) => {
            println!("{name} ({id}) is now {what}");
            ExitCode::SUCCESS
        }
        Ok(moderation::RoleOutcome::Unchanged(id)) => {
            println!("{name} ({id}) was already {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("admin: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Courier, clap::Error> {
        Courier::try_parse_from(std::iter::once("courier").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Courier::command().debug_assert();
    }

    #[test]
    fn no_command_serves() {
        assert!(parse(&[]).unwrap().command.is_none());
        assert!(matches!(
            parse(&["serve"]).unwrap().command,
            Some(Command::Serve)
        ));
        assert!(matches!(
            parse(&["migrate"]).unwrap().command,
            Some(Command::Migrate)
        ));
    }

    #[test]
    fn dlq_takes_an_action_a_limit_and_an_id() {
        let Some(Command::Dlq(d)) = parse(&["dlq", "replay", "--limit", "5", "--id", "m-1"])
            .unwrap()
            .command
        else {
            panic!("not dlq");
        };
        assert_eq!(
            (d.action, d.limit, d.id.as_deref()),
            (DlqAction::Replay, 5, Some("m-1"))
        );
        let Some(Command::Dlq(d)) = parse(&["dlq", "count"]).unwrap().command else {
            panic!("not dlq");
        };
        assert_eq!((d.action, d.limit, d.id), (DlqAction::Count, 100, None));
    }

    #[test]
    fn admin_takes_an_action_and_a_username() {
        let Some(Command::Admin(a)) = parse(&["admin", "grant", "alice"]).unwrap().command else {
            panic!("not admin");
        };
        assert_eq!(
            (a.action, a.username.as_str()),
            (AdminAction::Grant, "alice")
        );
        let Some(Command::Admin(a)) = parse(&["admin", "revoke", "bob"]).unwrap().command else {
            panic!("not admin");
        };
        assert_eq!(a.action, AdminAction::Revoke);
        for bad in [
            &["admin"][..],
            &["admin", "grant"],
            &["admin", "promote", "alice"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn push_vapid_keys_prints_a_matching_pair() {
        assert!(matches!(
            parse(&["push", "vapid-keys"]).unwrap().command,
            Some(Command::Push(PushCommand::VapidKeys))
        ));
        assert_eq!(parse(&["push"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["push", "keys"]).unwrap_err().exit_code(), 2);
        let out = vapid_keys();
        let lines: Vec<&str> = out.lines().collect();
        let public = lines[0].strip_prefix("PUSH_VAPID_PUBLIC_KEY=").unwrap();
        let private = lines[1].strip_prefix("PUSH_VAPID_PRIVATE_KEY=").unwrap();
        assert_eq!(lines.len(), 2);
        let secret = crate::push::vapid::private_key(private).unwrap();
        assert_eq!(crate::push::vapid::public_key_of(&secret), public);
        assert_ne!(vapid_keys(), out, "a new pair each time");
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        for bad in [
            &["dlq"][..],
            &["dlq", "purge"],
            &["dlq", "list", "--limit", "0"],
            &["dlq", "list", "--limit", "x"],
            &["dlq", "list", "--id"],
            &["launch"],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?} is accepted"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!(help.exit_code(), 0);
        let text = help.to_string();
        for cmd in ["serve", "migrate", "dlq", "admin", "push"] {
            assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
        }
    }
}
