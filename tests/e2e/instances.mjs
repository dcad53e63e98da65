// Throwaway PostgreSQL, Redis and RabbitMQ instances for fault-injection tests.
//
// A test that stops or restarts a service must not pull it from under the tests
// running beside it, so it gets an instance of its own: on free ports of
// 127.0.0.1, with its data in a fresh temporary directory, started and removed
// by the test itself. Each instance can be taken down and brought back up on
// the same port (`down()`, `up()`, `restart({downMs})`), and `stop()` removes it
// for good. Removal is robust: `stop()` is idempotent, falls back to SIGKILL, and
// a synchronous last-resort handler kills whatever is left when the Node process
// exits (an uncaught error, Ctrl-C through the harness's signal handlers).
//
// Needs the Debian packages redis-server, postgresql (15) and rabbitmq-server
// (scripts/services.sh installs them). PostgreSQL and RabbitMQ refuse to run as
// root, so when we are root their processes run as the `postgres` / `rabbitmq`
// users (`su`), which own the instance's directory.
//
//   const redis = await startRedis();            // {port, services, down(), up(), restart(), stop()}
//   const pg = await startPostgres();            // services.pgAdminUrl on its port
//   const rabbit = await startRabbitMQ();        // a second Erlang node; services.rabbitPort/-n node
//   new Deployment({ services: redis.services }) // see harness.mjs

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run, sleep } from './harness.mjs';

const HOST = '127.0.0.1';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Instances not yet removed, for the last-resort exit handler. */
const live = new Set();

process.once('exit', () => {
  for (const inst of live) {
    try { inst.killNow(); } catch { /* best effort */ }
  }
});

/** uid/gid of a system user (for chown), or null when unknown. */
function userIds(name) {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** Runs a shell command line as `user` when we are root (else as ourselves). */
function runAs(user, commandLine, options = {}) {
  return isRoot
    ? run('su', [user, '-s', '/bin/sh', '-c', commandLine], options)
    : run('/bin/sh', ['-c', commandLine], options);
}

const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** Whether something accepts TCP connections on HOST:port right now. */
function portOpen(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function until(what, predicate, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

function pidAlive(pid) {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch (err) { return err.code === 'EPERM'; }
}

function readPid(file) {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0].trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Common lifecycle: `down`/`up` around a stable port, idempotent `stop`, `killNow` for exit. */
class Instance {
  constructor(kind, dir, port) {
    this.kind = kind;
    this.dir = dir;
    this.port = port;
    this.isUp = false;
    this.removed = null;
    /** {at, what} for every down/up, for reports. */
    this.timeline = [];
    live.add(this);
  }

  note(what) { this.timeline.push({ at: Date.now(), what }); }

  /** Takes it down for `downMs`, then brings it back up on the same port. */
  async restart({ downMs = 0 } = {}) {
    await this.down();
    if (downMs > 0) await sleep(downMs);
    await this.up();
  }

  /** Removes the instance for good (processes and directory). Idempotent. */
  stop() {
    this.removed ??= (async () => {
      try {
        await this.shutdown();
      } catch (err) {
        process.stderr.write(`[instances] ${this.kind} on ${this.port}: graceful stop failed (${err.message.split('\n')[0]}); killing\n`);
      } finally {
        this.killNow();
        live.delete(this);
      }
    })();
    return this.removed;
  }

  /** Synchronous: SIGKILL every process of the instance and remove its directory. */
  killNow() {
    for (const pid of this.pids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The instance's own helper's recent log lines, for failure messages. */
  logTail(lines = 30) {
    try {
      return this.logFiles().map((f) => {
        const text = readFileSync(f, 'utf8').trimEnd().split('\n');
        return `----- ${f} -----\n${text.slice(-lines).join('\n')}`;
      }).join('\n');
    } catch (err) {
      return `(no log: ${err.message})`;
    }
  }
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

class RedisInstance extends Instance {
  get services() { return { redisHost: HOST, redisPort: this.port, redisCliArgs: this.cliArgs() }; }
  get pidFile() { return path.join(this.dir, 'redis.pid'); }
  pids() { return [readPid(this.pidFile)].filter(Boolean); }
  logFiles() { return [path.join(this.dir, 'redis.log')]; }

  /** redis-cli's options for the instance: TLS (with the client certificate) and the ACL user. */
  cliArgs() {
    const t = this.tls;
    const tlsArgs = t ? ['--tls', '--cacert', t.ca, ...(t.client ? ['--cert', t.client.cert, '--key', t.client.key] : []),
      ...(t.insecure ? ['--insecure'] : [])] : [];
    const aclArgs = this.acl ? ['--user', this.acl.user, '--pass', this.acl.password, '--no-auth-warning'] : [];
    return [...tlsArgs, ...aclArgs];
  }

  /** redis-cli on the instance (over TLS, with the client certificate, when it has one). */
  cli(args, timeoutMs = 5000) {
    return run('redis-cli', ['-h', HOST, '-p', String(this.port), ...this.cliArgs(), ...args], { timeoutMs });
  }

  async ping() {
    try { return (await this.cli(['PING'], 2000)).stdout.trim() === 'PONG'; } catch { return false; }
  }

  async up() {
    const t = this.tls;
    const listen = t
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', t.cert, '--tls-key-file', t.key,
        '--tls-ca-cert-file', t.ca, '--tls-auth-clients', t.authClients ?? 'optional']
      : ['--port', String(this.port)];
    // An ACL user (in the server's arguments, so it survives a restart) and no default user.
    const acl = this.acl
      ? ['--user', 'default', 'off', '--user', this.acl.user, 'on', `>${this.acl.password}`, '~*', '&*', '+@all'] : [];
    await run('redis-server', [...listen, ...acl, '--bind', HOST, '--save', '',
      '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', this.pidFile,
      '--logfile', path.join(this.dir, 'redis.log'), '--dir', this.dir, '--protected-mode', 'no']);
    await until(`redis on ${this.port} answers PING`, () => this.ping(), 15_000);
    this.isUp = true;
    this.note('up');
  }

  /** SHUTDOWN NOSAVE: every key is lost, every client connection dropped. */
  async down() {
    const pid = readPid(this.pidFile);
    this.isUp = false;
    this.note('down');
    await this.cli(['SHUTDOWN', 'NOSAVE']).catch(() => { /* the connection closes under it */ });
    await until(`redis on ${this.port} exits`, async () => !pidAlive(pid) && !(await portOpen(this.port)), 10_000);
  }

  async shutdown() {
    if (this.pids().some(pidAlive)) await this.down();
  }
}

/**
 * A fresh Redis on a free port (no persistence). `tls` ({cert, key, ca, client?,
 * authClients?, insecure?}: PEM paths, `client` {cert, key} for redis-cli, `authClients`
 * 'optional' | 'yes' | 'no', `insecure`: redis-cli skips verifying the server) makes its
 * only port a TLS port. `acl` ({user, password})
 * makes that user the only one (the default user is off); redis-cli logs in as it.
 */
export async function startRedis({ tls = null, acl = null } = {}) {
  const [port] = await freePorts(1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-fault-redis-'));
  const inst = new RedisInstance('redis', dir, port);
  inst.tls = tls;
  inst.acl = acl;
  try {
    await inst.up();
  } catch (err) {
    await inst.stop();
    throw err;
  }
  return inst;
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

function postgresBinDir() {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  const preferred = versions.find((v) => v === '15') ?? versions[0];
  if (!preferred) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (run scripts/services.sh)');
  return path.join(base, preferred, 'bin');
}

class PostgresInstance extends Instance {
  constructor(dir, port) {
    super('postgresql', dir, port);
    this.bin = postgresBinDir();
    this.data = path.join(dir, 'data');
  }

  /** Trust authentication on 127.0.0.1: any password is accepted. */
  get services() { return { pgAdminUrl: `postgres://postgres:postgres@${HOST}:${this.port}/postgres` }; }
  pids() { return [readPid(path.join(this.data, 'postmaster.pid'))].filter(Boolean); }
  logFiles() { return [path.join(this.dir, 'postgres.log')]; }

  pgCtl(args) {
    return runAs('postgres', `${shq(path.join(this.bin, 'pg_ctl'))} -D ${shq(this.data)} ${args}`, { timeoutMs: 60_000 });
  }

  async init() {
    await runAs('postgres', `${shq(path.join(this.bin, 'initdb'))} -D ${shq(this.data)} -U postgres `
      + '--auth=trust -E UTF8 -N --no-instructions', { timeoutMs: 60_000 });
  }

  async up() {
    const ssl = this.tls
      ? ` -c ssl=on -c ssl_cert_file=${this.dir}/server.pem -c ssl_key_file=${this.dir}/server.key -c ssl_ca_file=${this.dir}/ca.pem`
      : '';
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=${HOST} -c fsync=off `
      + `-c synchronous_commit=off -c full_page_writes=off -c max_connections=300${ssl}`;
    await this.pgCtl(`-o ${shq(opts)} -l ${shq(path.join(this.dir, 'postgres.log'))} -w -t 30 start`);
    this.isUp = true;
    this.note('up');
  }

  /** `pg_ctl stop -m fast` (or `immediate`): every session is terminated. */
  async down({ mode = 'fast' } = {}) {
    this.isUp = false;
    this.note('down');
    await this.pgCtl(`-m ${mode} -w -t 30 stop`);
  }

  async shutdown() {
    if (this.pids().some(pidAlive)) await this.down({ mode: 'immediate' });
  }
}

/**
 * The server's certificate, key and CA copied into the instance's directory (the key
 * owned by the server's user, mode 0600, or PostgreSQL refuses it), and `cert`
 * authentication (the client certificate's CN is the user) for `certUsers` over TLS.
 */
function installPgTls(inst, tls, ids) {
  for (const [from, to] of [[tls.cert, 'server.pem'], [tls.key, 'server.key'], [tls.ca, 'ca.pem']]) {
    const dest = path.join(inst.dir, to);
    copyFileSync(from, dest);
    chmodSync(dest, 0o600);
    if (ids) chownSync(dest, ids.uid, ids.gid);
  }
  const hba = path.join(inst.data, 'pg_hba.conf');
  const certLines = (tls.certUsers ?? []).map((u) => `hostssl all ${u} ${HOST}/32 cert\n`).join('');
  writeFileSync(hba, certLines + readFileSync(hba, 'utf8'));
}

/**
 * A fresh PostgreSQL cluster (initdb) on a free port, trust auth on 127.0.0.1. `tls`
 * ({cert, key, ca, certUsers?}: PEM paths) turns `ssl` on with that certificate;
 * `certUsers` log in with a client certificate only (mutual TLS).
 */
export async function startPostgres({ tls = null } = {}) {
  const [port] = await freePorts(1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-fault-pg-'));
  const inst = new PostgresInstance(dir, port);
  inst.tls = tls;
  try {
    let ids = null;
    if (isRoot) {
      ids = userIds('postgres');
      if (!ids) throw new Error('no postgres user (install postgresql: scripts/services.sh)');
      chownSync(dir, ids.uid, ids.gid);
      chmodSync(dir, 0o700);
    }
    await inst.init();
    if (tls) installPgTls(inst, tls, ids);
    await inst.up();
  } catch (err) {
    process.stderr.write(`[instances] PostgreSQL did not start:\n${inst.logTail()}\n`);
    await inst.stop();
    throw err;
  }
  return inst;
}

// ---------------------------------------------------------------------------
// RabbitMQ
// ---------------------------------------------------------------------------

class RabbitInstance extends Instance {
  constructor(dir, port, distPort) {
    super('rabbitmq', dir, port);
    this.distPort = distPort;
    this.node = `courier_fault_${randomBytes(4).toString('hex')}@localhost`;
    this.pidFile = path.join(dir, 'rabbit.pid');
  }

  get services() {
    return { rabbitHost: HOST, rabbitPort: this.port, rabbitmqctlArgs: ['-n', this.node] };
  }

  pids() { return [readPid(this.pidFile)].filter(Boolean); }
  logFiles() {
    const dir = path.join(this.dir, 'log');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => path.join(dir, f)) : [];
  }

  ctl(args, timeoutMs = 60_000) {
    return run('rabbitmqctl', ['-n', this.node, ...args], { timeoutMs });
  }

  env() {
    return {
      ...process.env,
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_IP_ADDRESS: HOST,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: this.pidFile,
      RABBITMQ_SERVER_START_ARGS: '',
      // Erlang distribution on loopback only.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ...(this.configFile ? { RABBITMQ_CONFIG_FILE: this.configFile } : {}),
    };
  }

  /** Boots the Erlang node (detached) and waits until its AMQP listener accepts. */
  async boot() {
    await run('rabbitmq-server', ['-detached'], { env: this.env(), cwd: this.dir, timeoutMs: 60_000 });
    await until(`rabbitmq node ${this.node} listening on ${this.port}`, () => portOpen(this.port), 90_000, 200);
    await this.ctl(['-q', 'await_startup', '--timeout', '60']);
    this.isUp = true;
    this.note('up');
  }

  /** `stop_app`: the broker closes every client connection and stops listening; the node stays. */
  async down() {
    this.isUp = false;
    this.note('down');
    await this.ctl(['-q', 'stop_app']);
  }

  async up() {
    await this.ctl(['-q', 'start_app']);
    await until(`rabbitmq ${this.node} listening again on ${this.port}`, () => portOpen(this.port), 60_000, 100);
    this.isUp = true;
    this.note('up');
  }

  async shutdown() {
    if (!this.pids().some(pidAlive)) return;
    await this.ctl(['-q', 'stop'], 30_000);
    await until(`rabbitmq node ${this.node} exits`, () => !this.pids().some(pidAlive), 15_000);
  }
}

/**
 * A second RabbitMQ node (`courier_fault_<hex>@localhost`) with its own AMQP and
 * distribution ports and data directory. Booting Erlang takes several seconds:
 * start one per test file at most.
 */
export async function startRabbitMQ({ config = null, plugins = [] } = {}) {
  const [port, distPort] = await freePorts(2);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-fault-rabbit-'));
  const inst = new RabbitInstance(dir, port, distPort);
  try {
    writeFileSync(path.join(dir, 'enabled_plugins'), `[${plugins.join(',')}].\n`);
    if (config) { // rabbitmq.conf lines (e.g. a TLS listener, see tls-rabbitmq.test.mjs)
      inst.configFile = path.join(dir, 'rabbitmq.conf');
      writeFileSync(inst.configFile, `${config.join('\n')}\n`);
      chmodSync(inst.configFile, 0o644);
    }
    if (isRoot) {
      // /usr/sbin/rabbitmq-server runs the node as the rabbitmq user (su), with its cookie.
      const ids = userIds('rabbitmq');
      if (!ids) throw new Error('no rabbitmq user (install rabbitmq-server: scripts/services.sh)');
      chownSync(dir, ids.uid, ids.gid);
      chownSync(path.join(dir, 'enabled_plugins'), ids.uid, ids.gid);
    }
    await inst.boot();
  } catch (err) {
    process.stderr.write(`[instances] RabbitMQ node ${inst.node} did not start:\n${inst.logTail()}\n`);
    await inst.stop();
    throw err;
  }
  return inst;
}

/**
 * Removes what killed runs left behind: every `courier-fault-*` directory in the temp
 * directory, after SIGKILLing the processes recorded in its pid files. Only for when no
 * e2e run is in progress (see sweep.mjs). Resolves the number of directories removed.
 */
export async function sweepInstances() {
  const tmp = os.tmpdir();
  const dirs = readdirSync(tmp).filter((d) => /^courier-fault-(redis|pg|rabbit|pgbouncer)-/.test(d)).map((d) => path.join(tmp, d));
  for (const dir of dirs) {
    const pids = ['redis.pid', 'data/postmaster.pid', 'rabbit.pid', 'pgbouncer.pid'].map((f) => readPid(path.join(dir, f))).filter(Boolean);
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return dirs.length;
}

// ---------------------------------------------------------------------------
// PgBouncer
// ---------------------------------------------------------------------------

const PGBOUNCER = existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer';

class PgBouncerInstance extends Instance {
  constructor(dir, port, pgPort, poolSize) {
    super('pgbouncer', dir, port);
    this.pgPort = pgPort;
    this.poolSize = poolSize;
    this.ini = path.join(dir, 'pgbouncer.ini');
    this.pidFile = path.join(dir, 'pgbouncer.pid');
  }

  /** A URL of database `db` through the bouncer (user postgres/postgres, as the shared cluster). */
  url(db) { return `postgres://postgres:postgres@${HOST}:${this.port}/${db}`; }

  pids() { return [readPid(this.pidFile)].filter(Boolean); }
  logFiles() { return [path.join(this.dir, 'pgbouncer.log')]; }

  /** Runs an admin console command (`SHOW POOLS`, `SHOW SERVERS`, ...); resolves rows of {column: value}. */
  async show(what) {
    const { stdout } = await run('psql', [this.url('pgbouncer'), '-X', '-q', '-A', '-F', '\t', '-P', 'footer=off',
      '-c', `SHOW ${what}`], { timeoutMs: 10_000 });
    const [header, ...rows] = stdout.trim().split('\n');
    const names = header.split('\t');
    return rows.filter(Boolean).map((r) => Object.fromEntries(r.split('\t').map((v, i) => [names[i], v])));
  }

  writeConfig() {
    writeFileSync(path.join(this.dir, 'userlist.txt'), '"postgres" "postgres"\n', { mode: 0o600 });
    writeFileSync(this.ini, [
      '[databases]',
      `* = host=${HOST} port=${this.pgPort}`,
      '[pgbouncer]',
      `listen_addr = ${HOST}`,
      `listen_port = ${this.port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      // A plain-text password lets PgBouncer log in to the server with SCRAM too.
      `auth_file = ${path.join(this.dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      // Small on purpose: many client connections share few server connections.
      `default_pool_size = ${this.poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 2000',
      // sqlx sends extra_float_digits at start-up unless told not to; 1.18 refuses
      // parameters it does not know.
      'ignore_startup_parameters = extra_float_digits',
      'server_tls_sslmode = disable',
      'admin_users = postgres',
      `logfile = ${path.join(this.dir, 'pgbouncer.log')}`,
      `pidfile = ${this.pidFile}`,
      '',
    ].join('\n'), { mode: 0o600 });
    if (isRoot) {
      const ids = userIds('postgres');
      if (!ids) throw new Error('no postgres user (install postgresql: scripts/services.sh)');
      for (const f of [this.dir, this.ini, path.join(this.dir, 'userlist.txt')]) chownSync(f, ids.uid, ids.gid);
    }
  }

  async up() {
    // As root PgBouncer must be told whom to run as.
    await run(PGBOUNCER, [...(isRoot ? ['-u', 'postgres'] : []), '-d', this.ini], { timeoutMs: 15_000 });
    await until(`pgbouncer on ${this.port} listening`, () => portOpen(this.port), 15_000);
    this.isUp = true;
    this.note('up');
  }

  /** SIGTERM: PgBouncer closes every client and server connection at once. */
  async down() {
    const pid = readPid(this.pidFile);
    this.isUp = false;
    this.note('down');
    if (pid) try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    await until(`pgbouncer on ${this.port} exits`, async () => !pidAlive(pid) && !(await portOpen(this.port)), 10_000);
  }

  async shutdown() {
    if (this.pids().some(pidAlive)) await this.down();
  }
}

/**
 * A PgBouncer (Debian's 1.18) on a free port in transaction pooling mode, in front of the
 * PostgreSQL on `pgPort` (every database, user postgres/postgres), with `poolSize` server
 * connections per database and user. `url(db)` is a DATABASE_URL through it; `show('POOLS')`
 * reads its admin console.
 */
export async function startPgBouncer({ pgPort = 5432, poolSize = 4 } = {}) {
  const [port] = await freePorts(1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-fault-pgbouncer-'));
  const inst = new PgBouncerInstance(dir, port, pgPort, poolSize);
  try {
    inst.writeConfig();
    await inst.up();
  } catch (err) {
    process.stderr.write(`[instances] PgBouncer did not start:\n${inst.logTail()}\n`);
    await inst.stop();
    throw err;
  }
  return inst;
}
