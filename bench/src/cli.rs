//! Command-line options and the defaults of each scenario.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Direct chats, R recipients, as fast as possible (or `--rate`).
    Throughput,
    /// Direct chats at a fixed offered rate (default 1000 msg/s).
    Latency,
    /// Groups of `--group-size`, reporting delivered events/s; with `--sizes`, one
    /// large group per size instead (CPU and Redis memory per message, e2e, ramp).
    Groups,
    /// N authenticated sockets held open on one gateway.
    Idle,
    /// `--messages` stored messages (filled by SQL), then search latency and plans.
    Search,
    /// RabbitMQ alone with Courier's topology, message size and confirms, then the
    /// throughput scenario in the same run: Courier's rate as a fraction of the broker's.
    Ceiling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `api`, `worker` and `gateway` as three processes.
    Split,
    /// The all-in-one `courier`.
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// `register` up to 2,000 users, `mint` above.
    Auto,
    /// `POST /auth/register` (Argon2 on the server).
    Register,
    /// Insert users with psql and sign HS256 tokens with the run's JWT_SECRET.
    Mint,
}

/// Load benchmark of Courier on 127.0.0.1 (starts its own Courier processes).
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "bench", version)]
pub struct Args {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Which Courier processes to start.
    #[arg(long, value_enum, default_value = "split")]
    pub mode: Mode,
    /// Measured seconds of load (after the warm-up) [throughput 60, latency 30, groups 30].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// At most this many seconds after the load for the last deliveries [15; large groups 180].
    #[arg(long)]
    pub grace: Option<f64>,
    /// Offered messages/s; none = as fast as possible [latency 1000].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Receiving users, one socket each [1000].
    #[arg(long, default_value_t = 1000)]
    pub recipients: usize,
    /// Chats: direct chats (one recipient each) or groups [direct: recipients; groups: 200].
    #[arg(long)]
    pub chats: Option<usize>,
    /// Members per group (one sender + size-1 recipients), at most 33.
    #[arg(long, default_value_t = 10)]
    pub group_size: usize,
    /// Groups, large-group mode: one group of each of these sizes (members, owner and
    /// sender included), e.g. `--sizes 100,1000,5000`; run one after another.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Large groups: fraction of the members online (one socket each, spread over the gateways).
    #[arg(long, default_value_t = 0.1)]
    pub online: f64,
    /// Large groups: exactly this many members online at every size (instead of
    /// `--online`), e.g. to compare Redis CPU per message between sizes.
    #[arg(long)]
    pub online_count: Option<usize>,
    /// Large groups: measure one join, one leave and one rename per size, with the
    /// online members connected (after the fixed-rate phase).
    #[arg(long)]
    pub churn: bool,
    /// Large groups, `--churn`: rounds of join, leave, rename (figures are means).
    #[arg(long, default_value_t = 5)]
    pub churn_rounds: usize,
    /// Gateway processes in split mode [large groups 2, else 1] (1 to 4).
    #[arg(long)]
    pub gateways: Option<usize>,
    /// Large groups: rates (msg/s into the group) of the ramp after the fixed-rate phase,
    /// each for `--step` seconds, until p99 passes `--p99-limit-ms` or a message is lost.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5,10,20,40,80,160,320,640,1280,2560"
    )]
    pub ramp: Vec<f64>,
    /// Large groups: stop the run if Redis's `used_memory` grows by more than this
    /// during one size (the Redis server is shared; it is not the run's own).
    #[arg(long, default_value_t = 4096)]
    pub redis_growth_limit_mb: u64,
    /// Large groups: seconds of each ramp step.
    #[arg(long, default_value_t = 5.0)]
    pub step: f64,
    /// Large groups: the ramp's p99 limit.
    #[arg(long, default_value_t = 1000.0)]
    pub p99_limit_ms: f64,
    /// Users that send (no sockets); chat i is owned by sender user i mod this.
    #[arg(long, default_value_t = 100)]
    pub sender_users: usize,
    /// Sender tasks = keep-alive HTTP connections [rate set: 32; as fast as possible: 48].
    #[arg(long)]
    pub senders: Option<usize>,
    /// Idle: sockets to hold.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Idle: seconds to hold the sockets before measuring the gateway.
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
    /// Idle: connect, hold and close the sockets this many times (churn), reporting the
    /// gateway's RSS after each close.
    #[arg(long, default_value_t = 1)]
    pub cycles: usize,
    /// Socket handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// How users get tokens.
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: Auth,
    /// Parallel registrations / chat creations.
    #[arg(long, default_value_t = 4)]
    pub setup_concurrency: usize,
    /// Worker threads of the bench's tokio runtime (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Hard cap on messages sent in one run.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_messages: u64,
    /// Where Courier's release binaries are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where the JSON results (and process logs under logs/) go.
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
    /// All three services over verified TLS, trusting this CA file for Redis and
    /// RabbitMQ: PostgreSQL `sslmode=verify-ca` with `--pg-root-cert`, Redis on
    /// `--redis-tls-port`, RabbitMQ amqps on `--amqps-port`. Without it every service is
    /// plaintext (PostgreSQL `sslmode=disable`). `scripts/bench.sh --tls` sets this up.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// With --tls-ca: the CA PostgreSQL's server certificate chains to.
    #[arg(long, default_value = "/etc/ssl/certs/ssl-cert-snakeoil.pem")]
    pub pg_root_cert: PathBuf,
    /// With --tls-ca: Redis's TLS port.
    #[arg(long, default_value_t = 6390)]
    pub redis_tls_port: u16,
    /// With --tls-ca: RabbitMQ's TLS listener.
    #[arg(long, default_value_t = 5671)]
    pub amqps_port: u16,
    /// Extra environment for the Courier processes, KEY=VALUE (repeatable); `{database}`
    /// and `{vhost}` in VALUE stand for the run's database and vhost.
    #[arg(long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// A PostgreSQL setting for the run's database, KEY=VALUE (repeatable; applied with
    /// ALTER DATABASE before Courier connects). For experiments, e.g. plan_cache_mode=force_custom_plan.
    #[arg(long = "db-setting", value_parser = parse_kv)]
    pub db_settings: Vec<(String, String)>,
    /// Search: messages to store before searching.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Search: measured requests per kind of query.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Keep the database, vhost and Redis keys of the run.
    #[arg(long)]
    pub keep: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

impl Args {
    /// "tls" or "plain": how Courier reaches its services.
    pub fn transport(&self) -> &'static str {
        if self.tls_ca.is_some() {
            "tls"
        } else {
            "plain"
        }
    }

    pub fn duration_secs(&self) -> f64 {
        self.duration.unwrap_or(match self.scenario {
            Scenario::Throughput | Scenario::Ceiling => 60.0,
            Scenario::Latency | Scenario::Groups => 30.0,
            Scenario::Idle | Scenario::Search => 0.0,
        })
    }

    /// Groups with `--sizes`: one large group per size.
    pub fn large_groups(&self) -> bool {
        self.scenario == Scenario::Groups && !self.sizes.is_empty()
    }

    pub fn grace_secs(&self) -> f64 {
        self.grace
            .unwrap_or(if self.large_groups() { 180.0 } else { 15.0 })
    }

    /// Gateway processes to start in split mode.
    pub fn gateway_count(&self) -> usize {
        self.gateways
            .unwrap_or(if self.large_groups() { 2 } else { 1 })
            .clamp(1, 4)
    }

    pub fn offered_rate(&self) -> Option<f64> {
        match (self.rate, self.scenario) {
            (Some(r), _) => Some(r),
            (None, Scenario::Latency) => Some(1000.0),
            (None, Scenario::Groups) if self.large_groups() => Some(20.0),
            _ => None,
        }
    }

    pub fn sender_count(&self) -> usize {
        self.senders.unwrap_or(if self.offered_rate().is_some() {
            32
        } else {
            48
        })
    }

    pub fn chat_count(&self) -> usize {
        self.chats.unwrap_or(match self.scenario {
            Scenario::Groups => 200,
            _ => self.recipients,
        })
    }

    /// Whether users get minted tokens rather than registering.
    pub fn mint(&self, users: usize) -> bool {
        match self.auth {
            Auth::Mint => true,
            Auth::Register => false,
            Auth::Auto => users > 2000,
        }
    }
}
