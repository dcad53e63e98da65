// Fault-injection toolkit for a RabbitMQ node cut off by the network (not killed): a
// throwaway 3-node cluster of scripts/rabbitmq-netns.sh, each node in a network namespace
// of its own behind a bridge (long node names on the veth addresses, `net_ticktime` of a
// few seconds, `pause_minority`), with an id and a 10.X.Y.0/24 network of its own so that
// runs do not collide. Cutting a node takes its link down: the node keeps running, its
// peers and clients get no reset, only silence. Also: quorum queues of a vhost as a node
// sees them, waiting for new leaders, for the cut node to be back in the cluster, for
// every queue to heal, and the elections the nodes logged.

import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEFAULT_QUEUE_PREFIX, PARTITIONS } from './fault-common.mjs';
import { run, sleep } from './harness.mjs';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/rabbitmq-netns.sh');
export const NODES = [1, 2, 3];

/** A /24 prefix 10.X.Y not on any interface of the host (X in 200..249). */
function freeNet() {
  const used = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (;;) {
    const net = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
    if (!used.includes(` ${net}.`)) return net;
  }
}

/**
 * Starts a cluster of its own (id, network and state directory fresh). Resolves
 * {nodes, net, dir, services, uris(vhost, query), script(args), stop()}; `stop` removes
 * everything (nodes, namespaces, veths, bridge, directory) and also runs when the process
 * exits without it. `tick`: the nodes' net_ticktime (s).
 */
export async function startNetnsCluster({ tick = 4 } = {}) {
  const id = randomBytes(3).toString('hex');
  const net = freeNet();
  const dir = `/tmp/courier-rmq-netns-${id}`;
  const env = { ...process.env, COURIER_RMQ_NETNS_ID: id, COURIER_RMQ_NETNS_NET: net, COURIER_RMQ_NETNS_DIR: dir, COURIER_RMQ_NETNS_TICK: String(tick) };
  const script = async (args, timeoutMs = 60_000) => (await run(SCRIPT, args, { timeoutMs, env })).stdout.trim();
  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    try { execFileSync(SCRIPT, ['stop'], { env, stdio: 'ignore', timeout: 60_000 }); } catch { /* best effort at exit */ }
  };
  process.once('exit', stopSync);
  try {
    await script(['start'], 240_000);
  } catch (err) {
    stopSync();
    throw err;
  }
  const nodes = Object.fromEntries(NODES.map((n) => [n, { name: `courier-p${id}-${n}@${net}.${n}`, host: `${net}.${n}` }]));
  return {
    kind: 'rabbitmq-netns', id, net, dir, nodes, script, env,
    services: { rabbitHost: nodes[1].host, rabbitPort: 5672, rabbitmqctlArgs: ['-l', '-n', nodes[1].name] },
    uris: (vhost, query = '') => NODES.map((n) => `amqp://guest:guest@${nodes[n].host}:5672/${encodeURIComponent(vhost)}${query ? `?${query}` : ''}`).join(','),
    /** Set by a failing test: `stop` then keeps the node logs in DIR.logs (and says so). */
    keepLogs: false,
    async stop() {
      if (stopped) return;
      await run(SCRIPT, ['stop'], { timeoutMs: 60_000, env: { ...env, COURIER_RMQ_NETNS_KEEP_LOGS: this.keepLogs ? '1' : '' } });
      if (this.keepLogs) process.stderr.write(`[fault-partition] node logs kept in ${dir}.logs\n`);
      stopped = true;
    },
  };
}

/** rabbitmqctl on node `n` (long names; a short timeout: polls retry). */
export function ctl(cluster, n, args, timeoutMs = 8_000) {
  return run(SCRIPT, ['ctl', String(n), ...args], {
    timeoutMs: timeoutMs + 5_000,
    env: { ...cluster.env, COURIER_RMQ_NETNS_CTL_TIMEOUT: String(Math.ceil(timeoutMs / 1000)) },
  });
}

/** Node `n`'s link down (cut) or up (heal); resolves the time it was done (ms since epoch). */
export async function cutNode(cluster, n) { await cluster.script(['cut', String(n)]); return Date.now(); }
export async function healNode(cluster, n) { await cluster.script(['heal', String(n)]); return Date.now(); }

/**
 * Until node `n` no longer listens for AMQP (pause_minority stopped its rabbit app), seen
 * from inside its namespace: the cut node has paused itself.
 */
export function awaitPaused(cluster, n, timeoutMs = 60_000) {
  return until(`node ${n} paused`, timeoutMs, 200, async () => {
    const { stdout } = await run('ip', ['netns', 'exec', `courier-part-${cluster.id}-${n}`, 'ss', '-Hltn', 'sport = :5672']);
    return stdout.trim() === '';
  });
}

/**
 * The quorum queues of `vhost` as node `n` sees them: [{name, leader, members?, online?}]
 * (members and online only with `full`: they ask every member, the cut one too).
 */
export async function quorumQueues(cluster, n, vhost, full = true) {
  const cols = full ? ['name', 'type', 'leader', 'members', 'online'] : ['name', 'type', 'leader'];
  const { stdout } = await ctl(cluster, n, ['list_queues', '-p', vhost, ...cols, '--formatter', 'json']);
  return JSON.parse(stdout || '[]').filter((q) => q.type === 'quorum');
}

const partitionNames = () => new Set(Array.from({ length: PARTITIONS }, (_, p) => `${DEFAULT_QUEUE_PREFIX}.${p}`));

/** The node number leading most partition queues of `vhost`, and the count per node. */
export async function busiestLeader(cluster, vhost) {
  const names = partitionNames();
  const queues = (await quorumQueues(cluster, 1, vhost, false)).filter((q) => names.has(q.name));
  const count = Object.fromEntries(NODES.map((n) => [n, queues.filter((q) => q.leader === cluster.nodes[n].name).length]));
  const node = NODES.reduce((best, n) => (count[n] > count[best] ? n : best), 1);
  return { node, count };
}

/** Polls until `check()` is true (errors count as false); resolves when that poll started. */
async function until(what, timeoutMs, intervalMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    const started = Date.now();
    try {
      if (await check()) return started;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${last.message.split('\n')[0]})` : ''}`);
    await sleep(intervalMs);
  }
}

/** Until every partition queue of `vhost` has a leader other than node `cut`, seen from node `via`. */
export function awaitNewLeaders(cluster, via, cut, vhost, timeoutMs = 60_000) {
  const names = partitionNames();
  return until('new leaders', timeoutMs, 100, async () => {
    const queues = (await quorumQueues(cluster, via, vhost, false)).filter((q) => names.has(q.name));
    return queues.length === names.size && queues.every((q) => q.leader && q.leader !== cluster.nodes[cut].name);
  });
}

/** The nodes node `via` sees running in the cluster. */
export async function runningNodes(cluster, via) {
  const { stdout } = await ctl(cluster, via, ['cluster_status', '--formatter', 'json']);
  return JSON.parse(stdout).running_nodes ?? [];
}

/** Until node `via` sees node `n` running in the cluster (true) or not (false). */
export function awaitMembership(cluster, via, n, present, timeoutMs = 90_000) {
  return until(`node ${n} ${present ? 'back in' : 'gone from'} the cluster`, timeoutMs, 200,
    async () => (await runningNodes(cluster, via)).includes(cluster.nodes[n].name) === present);
}

/** Until every quorum queue of `vhost` has 3 members, all online, seen from node `via`. */
export function awaitHealed(cluster, via, vhost, timeoutMs = 90_000) {
  return until('quorum queues healed', timeoutMs, 300, async () => {
    const queues = await quorumQueues(cluster, via, vhost);
    return queues.length > 0 && queues.every((q) => q.members.length === 3 && q.online.length === 3);
  });
}

/**
 * When each quorum queue of `vhost` last got a new leader in [since, until) (ms since
 * epoch), from the `-> leader in term` lines of the logs of the nodes other than `cut`.
 */
export function elections(cluster, vhost, since, untilMs, cut) {
  const out = new Map();
  const re = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d) .*queue '([^']+)' in vhost '([^']+)': \w+ -> leader in term/;
  for (const n of NODES.filter((x) => x !== cut)) {
    const dir = path.join(cluster.dir, String(n), 'log');
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.log')); } catch { continue; }
    for (const f of files) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        const m = re.exec(line);
        if (!m || m[5] !== vhost) continue;
        const at = Date.parse(`${m[1]}T${m[2].slice(0, 12)}${m[3]}`);
        if (at >= since && at < untilMs && at > (out.get(m[4]) ?? 0)) out.set(m[4], at);
      }
    }
  }
  return out;
}

/**
 * When the nodes other than `cut` declared node `cut` down after `since` (their
 * `node '<cut>' down` log lines, net_tick_timeout): the earliest, ms since epoch, or null.
 * A quorum queue whose leader stayed returns the deliveries checked out to consumers on
 * the cut node then: for its partition, this is what an election is to the others.
 */
export function nodedownAt(cluster, cut, since) {
  const re = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d) .*node '([^']+)' down/;
  let first = null;
  for (const n of NODES.filter((x) => x !== cut)) {
    const dir = path.join(cluster.dir, String(n), 'log');
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.log')); } catch { continue; }
    for (const f of files) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        const m = re.exec(line);
        if (!m || m[4] !== cluster.nodes[cut].name) continue;
        const at = Date.parse(`${m[1]}T${m[2].slice(0, 12)}${m[3]}`);
        if (at >= since && (first === null || at < first)) first = at;
      }
    }
  }
  return first;
}

/** The partition-handling lines node `n` logged (minority detected, pause, recovery), as `+ms text`. */
export function partitionLog(cluster, n, t0) {
  const dir = path.join(cluster.dir, String(n), 'log');
  const re = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d) \[\w+\] <[^>]+> (.*(minority|net_tick_timeout|partition|[Rr]ecover).*)$/;
  const out = [];
  let files = [];
  try { files = readdirSync(dir).filter((f) => f.endsWith('.log')); } catch { return out; }
  for (const f of files) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const m = re.exec(line);
      if (!m) continue;
      const at = Date.parse(`${m[1]}T${m[2].slice(0, 12)}${m[3]}`);
      if (at >= t0) out.push(`+${at - t0} ${m[4].slice(0, 120)}`);
    }
  }
  return out;
}

/**
 * Each Courier process's link to RabbitMQ from its logs: the node index (0-based, the
 * position in RABBITMQ_URIS) it was connected to at `at`, and when it next connected to
 * another node (ms since epoch, or null): {process: {nodeAt, movedAt}}.
 */
export function links(d, at) {
  const out = {};
  for (const p of d.processes) {
    let nodeAt = null;
    let movedAt = null;
    for (const line of p.stderr.toString().split('\n')) {
      if (!line.includes('rabbitmq connected')) continue;
      try {
        const j = JSON.parse(line);
        const f = { ...j, ...j.fields };
        const t = Date.parse(f.timestamp);
        if (t <= at) nodeAt = f.node;
        else if (movedAt === null && nodeAt !== null && f.node !== nodeAt) movedAt = t;
      } catch { /* not JSON */ }
    }
    out[p.name] = { nodeAt, movedAt };
  }
  return out;
}

/**
 * Removes every namespaced cluster left by a crashed or killed run (namespaces
 * courier-part-<id>-N, their nodes, veths, bridge and /tmp/courier-rmq-netns-<id>).
 * Only for when no e2e run is in progress (npm run sweep). Resolves how many.
 */
export async function sweepNetnsClusters() {
  let names = '';
  try { names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }); } catch { return 0; }
  const ids = new Set([...names.matchAll(/^courier-part-([a-z0-9]{1,6})-\d/gm)].map((m) => m[1]));
  for (const dir of readdirSync('/tmp').filter((f) => /^courier-rmq-netns-[a-z0-9]{1,6}$/.test(f))) ids.add(dir.slice('courier-rmq-netns-'.length));
  for (const id of ids) {
    await run(SCRIPT, ['stop'], { env: { ...process.env, COURIER_RMQ_NETNS_ID: id, COURIER_RMQ_NETNS_DIR: `/tmp/courier-rmq-netns-${id}` } });
  }
  return ids.size;
}
