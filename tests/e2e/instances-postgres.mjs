// A throwaway PostgreSQL cluster (optionally ssl=on with cert logins): see instances.mjs.

import { chmodSync, chownSync, copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run } from './harness.mjs';
import { HOST, isRoot, userIds, runAs, shq, pidAlive, readPid, Instance } from './instance.mjs';

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
