// Redis Cluster for the e2e tests, run by scripts/redis-cluster.sh (3 masters, 3 replicas):
//  - `startRedisCluster()`: a throwaway cluster of a test's own (six free ports, six free
//    bus ports, data under a temporary dir), for a test that kills a master;
//  - `sharedRedisCluster()`: the one cluster the regular tests use when
//    COURIER_E2E_REDIS=cluster (the script's default ports 7311-7316, or RC_* from the
//    environment), started on demand and left running (cluster-pass.mjs stops it);
//  - `clusterSlot(tag)`: the slot of a hash tag (CRC16/XMODEM mod 16384), as Redis
//    computes it for a key `...{tag}...`.

import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePorts, run } from './infra.mjs';

export const CLUSTER_SCRIPT = path.resolve(import.meta.dirname, '../../scripts/redis-cluster.sh');
const HOST = '127.0.0.1';

/** Throwaway clusters not yet stopped, for the last-resort exit handler. */
const live = new Set();
process.once('exit', () => {
  for (const c of live) {
    try { killClusterDir(c.dir); } catch { /* best effort */ }
  }
});

/** The pid in a node's pid file, or null. */
function readPid(file) {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Synchronously SIGKILLs every node whose pid file is under `dir` (one subdir per node) and removes it. */
export function killClusterDir(dir) {
  let subdirs = [];
  try { subdirs = readdirSync(dir); } catch { return; }
  for (const sub of subdirs) {
    const pid = readPid(path.join(dir, sub, 'redis.pid'));
    if (pid) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** CRC16/XMODEM (polynomial 0x1021, init 0), the checksum of Redis Cluster's key slots. */
function crc16(buf) {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of a key whose hash tag is `tag` (e.g. `u:<userId>`): CRC16(tag) mod 16384. */
export function clusterSlot(tag) { return crc16(Buffer.from(tag, 'utf8')) % 16384; }

/** A cluster run by the script with `env` (RC_PORTS, RC_BUS_PORTS, RC_DIR). */
export class RedisCluster {
  /** @param {{dir?: string, ports?: number[], busPorts?: number[]}} [place] default: the script's */
  constructor({ dir = null, ports = null, busPorts = null } = {}) {
    this.dir = dir;
    this.ports = ports;
    this.busPorts = busPorts;
    /** {at, what} of every kill, promotion and restart. */
    this.timeline = [];
  }

  get scriptEnv() {
    return {
      ...process.env,
      ...(this.dir ? { RC_DIR: this.dir } : {}),
      ...(this.ports ? { RC_PORTS: this.ports.join(' ') } : {}),
      ...(this.busPorts ? { RC_BUS_PORTS: this.busPorts.join(' ') } : {}),
    };
  }

  sh(args, timeoutMs = 90_000) { return run(CLUSTER_SCRIPT, args, { env: this.scriptEnv, timeoutMs }); }

  /** The seed list, as REDIS_CLUSTER_NODES takes it ("127.0.0.1:p1,...,127.0.0.1:p6"). */
  async nodes() {
    this.seeds ??= (await this.sh(['nodes'])).stdout.trim();
    return this.seeds;
  }

  /** Where a deployment finds Redis (serviceEndpoints fields; resolved by `start`). */
  get services() {
    if (!this.seeds) throw new Error('RedisCluster: call start() (or nodes()) before reading services');
    return { redisClusterNodes: this.seeds };
  }

  /** The variables that point Courier at the cluster (REDIS_HOST/PORT are then unused). */
  get courierEnv() { return { REDIS_CLUSTER_NODES: this.services.redisClusterNodes }; }

  async start() {
    await this.sh(['start']);
    await this.nodes();
    return this;
  }

  /** redis-cli against the node on `port` (no redirects followed); resolves stdout. */
  async cli(port, args) {
    return (await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeoutMs: 5000 })).stdout;
  }

  /** The live masters: [{addr: 'host:port', port, slots: [[lo, hi], ...]}]. */
  async masters() {
    const out = (await this.sh(['masters'])).stdout.trim();
    return out.split('\n').filter(Boolean).map((line) => {
      const [addr, ...ranges] = line.split(/\s+/);
      const slots = ranges.filter((r) => /^\d+(-\d+)?$/.test(r)).map((r) => {
        const [lo, hi = lo] = r.split('-').map(Number);
        return [lo, hi];
      });
      return { addr, port: Number(addr.split(':')[1]), slots };
    });
  }

  /** The master (of `masters`) serving `slot`. */
  static ownerOf(masters, slot) { return masters.find((m) => m.slots.some(([lo, hi]) => slot >= lo && slot <= hi)) ?? null; }

  /** ROLE of the node on `port`: {role: 'master'|'slave', master: 'host:port' (a replica's), state}. */
  async role(port) {
    const [role, host, masterPort, state] = (await this.cli(port, ['ROLE'])).split('\n').map((l) => l.trim());
    return role === 'slave' ? { role, master: `${host}:${masterPort}`, state } : { role };
  }

  async kill(port) { await this.sh(['kill', String(port)]); this.timeline.push({ at: Date.now(), what: `kill -9 ${port}` }); }

  /** Resolves the host:port now serving the slots of the killed master on `port` (every node ok). */
  async waitFailover(port) {
    const now = (await this.sh(['wait-failover', String(port)])).stdout.trim();
    this.timeline.push({ at: Date.now(), what: `promoted ${now}` });
    return now;
  }

  /** Starts the node on `port` again and waits until it is back (a replica, link up). */
  async restart(port) {
    await this.sh(['restart', String(port)]);
    this.timeline.push({ at: Date.now(), what: `restarted ${port}` });
  }

  async stop() {
    try { await this.sh(['stop']); } finally {
      if (this.dir) await rm(this.dir, { recursive: true, force: true });
      live.delete(this);
    }
  }
}

/** A throwaway cluster on six free ports (and six free bus ports), waited on until ok. */
export async function startRedisCluster() {
  const ports = await freePorts(12);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'courier-fault-rcluster-'));
  const cluster = new RedisCluster({ dir, ports: ports.slice(0, 6), busPorts: ports.slice(6) });
  live.add(cluster);
  try {
    await cluster.start();
  } catch (err) {
    await cluster.stop().catch(() => { /* the start error says more */ });
    throw err;
  }
  return cluster;
}

let shared = null;

/**
 * The shared cluster of COURIER_E2E_REDIS=cluster runs (the script's ports and dir, or
 * RC_PORTS / RC_BASE_PORT / RC_DIR from the environment): started once per process if it
 * is not running (the script's start is idempotent and locked), never stopped here.
 */
export function sharedRedisCluster() {
  shared ??= new RedisCluster().start().catch((err) => {
    shared = null;
    throw new Error(`COURIER_E2E_REDIS=cluster: could not start the shared Redis Cluster: ${err.message}`);
  });
  return shared;
}
