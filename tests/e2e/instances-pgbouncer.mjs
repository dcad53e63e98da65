// A throwaway PgBouncer in transaction pooling mode: see instances.mjs.

import { chownSync, existsSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run } from './harness.mjs';
import { HOST, isRoot, userIds, portOpen, until, pidAlive, readPid, Instance } from './instance.mjs';

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
