//! Starts Courier for one run, isolated from everything else on the services: a
//! fresh database `courier_bench_<tag>`, Redis prefix `courier_bench_<tag>:` and
//! RabbitMQ vhost `courier_bench_<tag>`, removed again afterwards. Mode `split` runs
//! `api`, `worker` and `gateway` as three processes, `single` runs `courier`.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::{cli::Mode, http::Conn, rabbit};

/// How long a process may take to answer `/readyz` 200.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a process gets to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

const PG_ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432";

/// The names that keep one run apart from every other deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Isolation {
    pub tag: String,
    pub database: String,
    pub redis_prefix: String,
    pub vhost: String,
    #[serde(skip)]
    pub jwt_secret: String,
    /// How Courier reaches PostgreSQL, Redis and RabbitMQ (plaintext or TLS).
    #[serde(skip)]
    pub services: Vec<(String, String)>,
}

/// Where the services' TLS listeners are (`--tls-ca` and its companions).
pub struct TlsServices {
    pub ca: PathBuf,
    pub pg_root_cert: PathBuf,
    pub redis_port: u16,
    pub amqps_port: u16,
}

impl Isolation {
    pub fn new(tls: Option<&TlsServices>) -> Self {
        let raw = uuid::Uuid::new_v4().simple().to_string();
        let tag = raw[..10].to_string();
        let database = format!("courier_bench_{tag}");
        let vhost = format!("courier_bench_{tag}");
        let url = format!("{PG_ADMIN_URL}/{database}");
        let services = match tls {
            // Explicitly plaintext: the default `prefer` would encrypt where the
            // server has ssl=on (Debian's cluster has).
            None => vec![
                ("DATABASE_URL", format!("{url}?sslmode=disable")),
                ("REDIS_HOST", "127.0.0.1".into()),
                ("REDIS_PORT", "6379".into()),
                ("RABBITMQ_HOST", "127.0.0.1".into()),
                ("RABBITMQ_PORT", "5672".into()),
                ("RABBITMQ_VHOST", vhost.clone()),
            ],
            Some(t) => vec![
                (
                    "DATABASE_URL",
                    format!(
                        "{url}?sslmode=verify-ca&sslrootcert={}",
                        t.pg_root_cert.display()
                    ),
                ),
                (
                    "REDIS_URL",
                    format!("rediss://127.0.0.1:{}/0", t.redis_port),
                ),
                ("REDIS_CA_CERT", t.ca.display().to_string()),
                (
                    "RABBITMQ_URI",
                    format!("amqps://guest:guest@127.0.0.1:{}/{vhost}", t.amqps_port),
                ),
                ("RABBITMQ_CA_CERT", t.ca.display().to_string()),
            ],
        };
        Self {
            services: services
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            database,
            redis_prefix: format!("courier_bench_{tag}:"),
            vhost,
            jwt_secret: uuid::Uuid::new_v4().simple().to_string() + &raw,
            tag,
        }
    }

    pub fn database_url(&self) -> String {
        format!("{PG_ADMIN_URL}/{}", self.database)
    }

    /// The environment every Courier process of the run gets.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("REDIS_KEY_PREFIX", self.redis_prefix.clone()),
            ("JWT_SECRET", self.jwt_secret.clone()),
            ("JWT_EXPIRATION_TIME", "86400".into()),
            ("HOST", "127.0.0.1".into()),
            ("RUST_LOG", "warn".into()),
            // Every bench client shares 127.0.0.1: no per-IP auth limit. The per-user
            // send limit stays on (its Redis round trip is part of each send) but is
            // raised above what 100 senders can reach.
            ("RATE_LIMIT_AUTH_IP_MAX", "0".into()),
            ("RATE_LIMIT_SEND_MAX", "10000000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.services.iter().cloned())
        .collect()
    }

    /// `ALTER DATABASE <db> SET key = 'value'` (for new connections).
    pub fn set_db(&self, key: &str, value: &str) -> anyhow::Result<()> {
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            bail!("not a setting name: {key:?}");
        }
        let sql = format!(
            "ALTER DATABASE \"{}\" SET {key} = '{}'",
            self.database,
            value.replace('\'', "''")
        );
        let ok = Command::new("psql")
            .args([
                &format!("{PG_ADMIN_URL}/postgres"),
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                &sql,
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!("could not apply {key} = {value}");
        }
        Ok(())
    }

    /// The users' event streams in Redis: how many, and their memory (`MEMORY USAGE`).
    pub fn stream_memory(&self) -> StreamMemory {
        let script = format!(
            "redis-cli -h 127.0.0.1 --scan --pattern '{}user:*:events' | sed 's/^/MEMORY USAGE /' | redis-cli -h 127.0.0.1",
            self.redis_prefix
        );
        let out = Command::new("sh").args(["-c", &script]).output();
        let sizes: Vec<u64> = match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        StreamMemory {
            users: sizes.len(),
            bytes: sizes.iter().sum(),
            max_bytes: sizes.iter().copied().max().unwrap_or(0),
        }
    }

    /// Drops the database, the vhost and the Redis keys (each step best effort).
    pub fn cleanup(&self) {
        let drop_db = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        let r = Command::new("psql")
            .args([&format!("{PG_ADMIN_URL}/postgres"), "-qAtc", &drop_db])
            .stdout(Stdio::null())
            .status();
        if !r.is_ok_and(|s| s.success()) {
            eprintln!("[bench] could not drop database {}", self.database);
        }
        rabbit::delete_vhost(&self.vhost);
        // Bounded by the keys this run made; the pattern is the run's own prefix.
        let script = format!(
            "redis-cli -h 127.0.0.1 --scan --pattern '{}*' | xargs -r -n 500 redis-cli -h 127.0.0.1 DEL >/dev/null",
            self.redis_prefix
        );
        let _ = Command::new("sh").args(["-c", &script]).status();
    }
}

/// One running Courier process.
pub struct Proc {
    pub name: &'static str,
    pub port: u16,
    child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The processes of a run and where to reach them.
pub struct Deployment {
    pub procs: Vec<Proc>,
    pub api: SocketAddr,
    pub gateway: SocketAddr,
    /// Every gateway (split mode may run several; the first is `gateway`).
    pub gateways: Vec<SocketAddr>,
    pub log_dir: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn command(bin: &Path, iso: &Isolation, extra: &[(String, String)], log_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    // The log directory as working directory: no stray `.env` is picked up.
    // `{database}` and `{vhost}` in an extra value stand for the run's own.
    let extra = extra.iter().map(|(k, v)| {
        let v = v
            .replace("{database}", &iso.database)
            .replace("{vhost}", &iso.vhost);
        (k.clone(), v)
    });
    cmd.current_dir(log_dir).envs(iso.env()).envs(extra);
    cmd
}

impl Deployment {
    /// Migrates, starts the processes of `mode` (split: `gateways` gateway processes,
    /// named gateway, gateway2, ...) and waits until each is ready.
    pub async fn start(
        mode: Mode,
        gateways: usize,
        bin_dir: &Path,
        iso: &Isolation,
        extra_env: &[(String, String)],
        db_settings: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        // The processes run in the log directory: a relative binary path would miss.
        let bin_dir = &std::fs::canonicalize(bin_dir)
            .with_context(|| format!("no binary directory {}", bin_dir.display()))?;
        rabbit::add_vhost(&iso.vhost)?;
        let courier = bin_dir.join("courier");
        let status = command(&courier, iso, extra_env, log_dir)
            .arg("migrate")
            .stdout(Stdio::null())
            .stderr(File::create(log_dir.join("migrate.log"))?)
            .status()
            .with_context(|| format!("cannot run {}", courier.display()))?;
        if !status.success() {
            bail!(
                "`courier migrate` failed; see {}",
                log_dir.join("migrate.log").display()
            );
        }
        for (key, value) in db_settings {
            iso.set_db(key, value)?;
        }
        const GATEWAYS: [&str; 4] = ["gateway", "gateway2", "gateway3", "gateway4"];
        let roles: Vec<(&'static str, &'static str)> = match mode {
            Mode::Split => [("api", "PORT"), ("worker", "WORKER_PORT")]
                .into_iter()
                .chain(
                    GATEWAYS[..gateways.clamp(1, 4)]
                        .iter()
                        .map(|g| (*g, "GATEWAY_PORT")),
                )
                .collect(),
            Mode::Single => vec![("courier", "PORT")],
        };
        let mut dep = Deployment {
            procs: Vec::new(),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateways: Vec::new(),
            log_dir: log_dir.to_path_buf(),
        };
        for (name, port_var) in roles {
            let port = free_port()?;
            let log = File::create(log_dir.join(format!("{name}.log")))?;
            let bin = if name.starts_with("gateway") {
                "gateway"
            } else {
                name
            };
            let mut cmd = command(&bin_dir.join(bin), iso, extra_env, log_dir);
            // Every port variable gets a free port (none falls back to a default that
            // another Courier on this machine may hold); the role's own is `port`.
            for var in ["PORT", "GATEWAY_PORT", "WORKER_PORT"] {
                let p = if var == port_var { port } else { free_port()? };
                cmd.env(var, p.to_string());
            }
            let child = cmd
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {name}"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if matches!(name, "api" | "courier") {
                dep.api = addr;
            }
            if name == "gateway" || name == "courier" {
                dep.gateway = addr;
            }
            if name.starts_with("gateway") || name == "courier" {
                dep.gateways.push(addr);
            }
            dep.procs.push(Proc { name, port, child });
        }
        for i in 0..dep.procs.len() {
            dep.wait_ready(i).await?;
        }
        Ok(dep)
    }

    async fn wait_ready(&mut self, i: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let (name, port) = (self.procs[i].name, self.procs[i].port);
        let mut conn = Conn::new(SocketAddr::from(([127, 0, 0, 1], port)));
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.procs[i].child.try_wait() {
                bail!(
                    "{name} exited ({status}); see {}",
                    self.log_dir.join(format!("{name}.log")).display()
                );
            }
            if conn.ok("/readyz").await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{name} not ready after {READY_TIMEOUT:?}")
    }

    /// The process that holds the sockets.
    pub fn gateway_pid(&self) -> Option<u32> {
        self.procs
            .iter()
            .find(|p| matches!(p.name, "gateway" | "courier"))
            .map(Proc::pid)
    }

    /// SIGTERM to each process, SIGKILL after `STOP_TIMEOUT`.
    pub fn stop(mut self) {
        for p in &self.procs {
            // SAFETY: kill with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(p.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("[bench] {} did not stop in time; killing it", p.name);
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

/// Redis memory of the per-user event streams.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StreamMemory {
    /// Users with a stream (had an event within the retention window).
    pub users: usize,
    pub bytes: u64,
    /// The largest single stream.
    pub max_bytes: u64,
}
