// A throwaway Redis Sentinel set of a test's own (one master, one replica, three
// sentinels on free ports, data under a temporary dir), run by scripts/redis-sentinel.sh:
// a test that kills the master disturbs no other test.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, makeInfra, run, serviceEndpoints } from './harness.mjs';

const SCRIPT = path.resolve(import.meta.dirname, '../../scripts/redis-sentinel.sh');
const HOST = '127.0.0.1';

/** A running set; `stop()` kills every node and removes its dir. */
export class SentinelSet {
  /** @param {string} dir @param {number[]} ports master, replica, then three sentinels */
  constructor(dir, ports) {
    this.dir = dir;
    [this.masterPort, this.replicaPort, ...this.sentinelPorts] = ports;
    /** {at, what} of every kill, resume and promotion. */
    this.timeline = [];
  }

  get scriptEnv() {
    return {
      ...process.env, RS_DIR: this.dir, RS_MASTER_PORT: String(this.masterPort),
      RS_REPLICA_PORT: String(this.replicaPort), RS_SENTINEL_PORTS: this.sentinelPorts.join(' '),
    };
  }

  /** The variables that point Courier at the set (REDIS_HOST/PORT are then unused). */
  get courierEnv() {
    return { REDIS_SENTINELS: this.sentinelPorts.map((p) => `${HOST}:${p}`).join(','), REDIS_SENTINEL_MASTER: 'mymaster' };
  }

  /** For the deployment's own redis-cli use (its teardown): the first master. */
  get services() { return { redisHost: HOST, redisPort: this.masterPort }; }

  sh(args, timeoutMs = 60_000) { return run(SCRIPT, args, { env: this.scriptEnv, timeoutMs }); }

  /** redis-cli against the node on `port`; resolves stdout. */
  async cli(port, args) { return (await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeoutMs: 5000 })).stdout; }

  /** The master's host:port as the sentinels name it. */
  async master() { return (await this.sh(['master'])).stdout.trim(); }

  /** kill -9 of the node on `port`. */
  async kill(port) { await this.sh(['kill', String(port)]); this.timeline.push({ at: Date.now(), what: `kill -9 ${port}` }); }

  async pause(port) { await this.sh(['pause', String(port)]); this.timeline.push({ at: Date.now(), what: `SIGSTOP ${port}` }); }

  async resume(port) { await this.sh(['resume', String(port)]); this.timeline.push({ at: Date.now(), what: `SIGCONT ${port}` }); }

  async restart(port) { await this.sh(['restart', String(port)]); }

  /** Resolves the new master's host:port once the sentinels promoted one other than `old`. */
  async waitFailover(old) {
    const now = (await this.sh(['wait-failover', old])).stdout.trim();
    this.timeline.push({ at: Date.now(), what: `promoted ${now}` });
    return now;
  }

  /** Resolves once the replica on `replicaPort` has everything the master on `masterPort` wrote. */
  async replicated(masterPort, replicaPort, timeoutMs = 10_000) {
    const offset = async (port) => Number(/master_repl_offset:(\d+)/.exec(await this.cli(port, ['info', 'replication']))?.[1] ?? -1);
    const deadline = Date.now() + timeoutMs;
    const target = await offset(masterPort);
    while (Date.now() < deadline) {
      if ((await offset(replicaPort)) >= target) return;
      await new Promise((r) => { setTimeout(r, 20); });
    }
    throw new Error(`replica ${replicaPort} did not reach offset ${target} within ${timeoutMs} ms`);
  }

  /** Points deployment `d`'s own Redis use (its teardown) at the current master. */
  async follow(d) {
    const [host, port] = (await this.master()).split(':');
    d.infra = makeInfra(serviceEndpoints({ ...d.infra.endpoints, redisHost: host, redisPort: Number(port) }));
  }

  /**
   * Stops replication to the replica on `replicaPort` for good (until the master is
   * gone): the replica is stopped (SIGSTOP), then the master drops its link, so what the
   * master writes next is in no socket buffer the replica could still read on SIGCONT.
   */
  async cutReplication(masterPort, replicaPort) {
    await this.pause(replicaPort);
    await this.cli(masterPort, ['CLIENT', 'KILL', 'TYPE', 'replica']);
  }

  async stop() {
    try { await this.sh(['stop']); } finally { await rm(this.dir, { recursive: true, force: true }); }
  }
}

/** Starts a set on five free ports (waits until the sentinels know the replica and each other). */
export async function startSentinelSet() {
  const ports = await freePorts(5);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-sentinel-'));
  const set = new SentinelSet(dir, ports);
  try {
    await set.sh(['start']);
  } catch (err) {
    await set.stop();
    throw err;
  }
  return set;
}
