// A throwaway RabbitMQ node (optional rabbitmq.conf and plugins): see instances.mjs.

import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run } from './harness.mjs';
import { HOST, isRoot, userIds, portOpen, until, pidAlive, readPid, Instance } from './instance.mjs';

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
