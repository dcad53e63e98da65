// A throwaway Redis (plain or TLS-only port, optional ACL user): see instances.mjs.

import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run } from './harness.mjs';
import { HOST, portOpen, until, pidAlive, readPid, Instance } from './instance.mjs';

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
