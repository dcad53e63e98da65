// Fault-injection toolkit, the local 3-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh:
// starting it (idempotent; the shared one of the bench, or one of the test's own with its
// own node names, ports and directory), the deployment's `RABBITMQ_URIS`, which node leads
// which partition queue of a vhost, killing (kill -9 of its Erlang VM) and restarting a
// node, waiting for new leaders and for every quorum queue to have all its members
// online; and the figures of a node loss (refused window, dark window) from a scenario's
// ledger and clients. The scenario itself is in fault-cluster-scenario.mjs.

import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEFAULT_QUEUE_PREFIX, PARTITIONS, partitionOf } from './fault-common.mjs';
import { freePorts, run, sleep } from './harness.mjs';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/rabbitmq-cluster.sh');
const NODES = [1, 2, 3];

/** Runs scripts/rabbitmq-cluster.sh with `args` (and `env`); resolves its trimmed stdout. */
export async function clusterScript(args, { env = process.env, timeoutMs = 240_000 } = {}) {
  const { stdout } = await run(SCRIPT, args, { timeoutMs, env });
  return stdout.trim();
}

/**
 * The cluster (started if it is not running). `own`: a cluster of the test's own
 * (node names courier-t<hex>1..3, free AMQP and distribution ports, a fresh state
 * directory), which `stop()` stops and removes; otherwise the shared one of the script's
 * defaults, which outlives the test (it isolates itself with its own vhost) and which
 * `stop()` only makes sure runs again. `services` points the deployment's rabbitmqctl
 * (vhost, permissions) at node 1.
 */
export async function startCluster({ own = false } = {}) {
  const env = { ...process.env };
  if (own) {
    const ports = await freePorts(6);
    Object.assign(env, {
      COURIER_RMQ_CLUSTER_DIR: mkdtempSync(path.join(os.tmpdir(), 'courier-rmq-cluster-')),
      COURIER_RMQ_CLUSTER_NAME: `courier-t${Math.random().toString(16).slice(2, 8)}-`,
      COURIER_RMQ_CLUSTER_PORTS: ports.slice(0, 3).join(' '),
      COURIER_RMQ_CLUSTER_DIST_PORTS: ports.slice(3).join(' '),
    });
  }
  const script = (args, timeoutMs) => clusterScript(args, { env, timeoutMs });
  try {
    await script(['start']);
  } catch (err) {
    if (own) await script(['stop']).catch(() => {});
    throw err;
  }
  const nodes = {};
  for (const n of NODES) nodes[n] = { name: await script(['node', String(n)]), port: Number(await script(['port', String(n)])) };
  return {
    kind: 'rabbitmq-cluster',
    nodes,
    script,
    /** The state directory (the nodes' logs are under <dir>/<n>/log). */
    dir: env.COURIER_RMQ_CLUSTER_DIR ?? '/tmp/courier-rmq-cluster',
    services: { rabbitHost: '127.0.0.1', rabbitPort: nodes[1].port, rabbitmqctlArgs: ['-n', nodes[1].name] },
    uris: (vhost) => script(['uris', vhost]),
    async stop() { await script([own ? 'stop' : 'start']); },
  };
}

/** rabbitmqctl on node `n` of `cluster`. */
function ctl(cluster, n, args, timeoutMs = 30_000) {
  return run('rabbitmqctl', ['-q', '-n', cluster.nodes[n].name, ...args], { timeoutMs });
}

/** The quorum queues of `vhost` as node `n` sees them: [{name, leader, members, online}]. */
export async function quorumQueues(cluster, n, vhost) {
  const { stdout } = await ctl(cluster, n, ['list_queues', '-p', vhost, 'name', 'type', 'leader', 'members', 'online', '--formatter', 'json']);
  return JSON.parse(stdout || '[]').filter((q) => q.type === 'quorum');
}

const partitionNames = () => Array.from({ length: PARTITIONS }, (_, p) => `${DEFAULT_QUEUE_PREFIX}.${p}`);

/** The node number (1..3) leading most partition queues of `vhost`, and the count per node. */
export async function busiestLeader(cluster, vhost) {
  const names = new Set(partitionNames());
  const queues = (await quorumQueues(cluster, 1, vhost)).filter((q) => names.has(q.name));
  const count = Object.fromEntries(NODES.map((n) => [n, queues.filter((q) => q.leader === cluster.nodes[n].name).length]));
  const node = NODES.reduce((best, n) => (count[n] > count[best] ? n : best), 1);
  return { node, count, queues };
}

/** kill -9 of node `n`'s Erlang VM; resolves the time of the kill (ms since epoch). */
export async function killNode(cluster, n) {
  const pid = Number(await cluster.script(['pid', String(n)]));
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`node ${n} has no running VM`);
  process.kill(pid, 'SIGKILL');
  return Date.now();
}

/**
 * Polls node `via` until every partition queue of `vhost` has a leader other than node
 * `dead`. Resolves when the poll that saw it started (the election happened before).
 */
export async function awaitNewLeaders(cluster, via, dead, vhost, timeoutMs = 60_000) {
  const deadName = cluster.nodes[dead].name;
  const names = new Set(partitionNames());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const started = Date.now();
    try {
      const queues = (await quorumQueues(cluster, via, vhost)).filter((q) => names.has(q.name));
      if (queues.length === names.size && queues.every((q) => q.leader && q.leader !== deadName && q.leader !== '')) return started;
    } catch { /* the CLI may time out while the cluster notices the loss */ }
    if (Date.now() > deadline) throw new Error(`no new leaders within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Starts node `n` again (the script waits until it runs in the cluster). */
export async function restartNode(cluster, n) {
  await cluster.script(['start-node', String(n)]);
  return Date.now();
}

/**
 * Waits until every quorum queue of `vhost` has `size` members, all online (the restarted
 * node rejoined and its replicas caught up). Resolves the queues as last seen.
 */
export async function awaitHealed(cluster, vhost, size = 3, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let queues = [];
  for (;;) {
    try {
      queues = await quorumQueues(cluster, 1, vhost);
      if (queues.length > 0 && queues.every((q) => q.members.length === size && q.online.length === size)) return queues;
    } catch { /* retried */ }
    if (Date.now() > deadline) {
      throw new Error(`quorum queues not healed within ${timeoutMs} ms: ${JSON.stringify(queues.map((q) => [q.name, q.members.length, q.online.length]))}`);
    }
    await sleep(500);
  }
}

/**
 * The figures of a node loss at `killAt` from scenario `s` (after its report): the
 * refused window (first and last start of a POST answered 503, relative to the kill), and
 * the dark window (from the kill to the first live arrival of a message first sent after
 * it); `lateMaxMs`: over messages accepted after the kill, the longest wait from
 * max(accepted, the election of its chat's partition: `electedOf(chatId)`) to its first
 * live arrival on any socket.
 */
export async function lossFigures(s, killAt, electedOf) {
  const refused = s.ledger.all.flatMap((r) => r.refusedAt ?? []).sort((a, b) => a - b);
  const rows = await s.rows();
  const recOf = new Map(s.ledger.all.map((r) => [r.cmid, r]));
  const firstLive = new Map();
  for (const c of s.clients) {
    for (const [key, at] of c.firstLive) firstLive.set(key, Math.min(at, firstLive.get(key) ?? Infinity));
  }
  let darkEnd = null;
  let lateMaxMs = 0;
  let lateWhat = null;
  for (const row of rows) {
    const rec = recOf.get(row.clientMessageId);
    const at = firstLive.get(`${row.chatId}:${row.sequence}`);
    if (!rec || at === undefined) continue;
    if (rec.firstAt >= killAt && (darkEnd === null || at < darkEnd)) darkEnd = at;
    if (rec.acceptedAt !== null && rec.acceptedAt >= killAt) {
      const late = at - Math.max(rec.acceptedAt, electedOf(row.chatId));
      if (late > lateMaxMs) { lateMaxMs = late; lateWhat = `${rec.sender} "${rec.content}"`; }
    }
  }
  return {
    refused: refused.length,
    refusedFromMs: refused.length ? refused[0] - killAt : null,
    refusedToMs: refused.length ? refused.at(-1) - killAt : null,
    darkMs: darkEnd === null ? null : darkEnd - killAt,
    lateMaxMs,
    lateWhat,
  };
}

/**
 * The link events of every process of `d` (connected, lost, connect failed, republished),
 * as `<process> +<ms after t0> <message> node=<n>` lines: the failover's timeline.
 */
export function linkEvents(d, t0) {
  const out = [];
  for (const p of d.processes) {
    for (const line of p.stderr.toString().split('\n')) {
      if (!/rabbitmq (connected|connection lost|connect failed)|publishing again/.test(line)) continue;
      try {
        const j = JSON.parse(line);
        const f = { ...j, ...j.fields };
        out.push(`${p.name} +${Date.parse(f.timestamp) - t0} ${f.message} node=${f.node ?? '-'}${f.cause ? ` (${String(f.cause).slice(0, 80)})` : ''}`);
      } catch { /* not JSON */ }
    }
  }
  return out;
}

/**
 * The requests of `d`'s api processes answered 503, per dependency (from their
 * `dependency unavailable` and `response failed` log lines): when each came in (the
 * answer's time less its latency) and was answered, in ms since epoch:
 * {rabbitmq: [{start, end}], postgres: [...]}.
 */
export function refusalsByDependency(d) {
  const out = {};
  for (const p of d.processes.filter((x) => x.binaryName === 'api' || x.binaryName === 'courier')) {
    const deps = new Map();
    const starts = new Map();
    for (const line of p.stderr.toString().split('\n')) {
      if (!line.includes('unavailable') && !line.includes('response failed')) continue;
      try {
        const j = JSON.parse(line);
        const f = { ...j, ...j.fields };
        const id = f.span?.request_id;
        if (!id) continue;
        const at = Date.parse(f.timestamp);
        if (f.message === 'response failed' && /503/.test(f.classification ?? '')) {
          starts.set(id, { start: at - (Number.parseFloat(f.latency) || 0), end: at });
        } else if (f.message === 'dependency unavailable' && f.dependency) {
          deps.set(id, f.dependency);
        } else if (f.message === 'database unavailable' && !deps.has(id)) {
          deps.set(id, 'postgres');
        }
      } catch { /* not JSON */ }
    }
    for (const [id, dep] of deps) {
      if (starts.has(id)) (out[dep] ??= []).push(starts.get(id));
    }
  }
  return out;
}

/** The election time of `chatId`'s partition in `elected` (see `elections`), else `otherwise`. */
export const electedOfChat = (elected, otherwise) => (chatId) =>
  elected.get(`${DEFAULT_QUEUE_PREFIX}.${partitionOf(chatId)}`) ?? otherwise;

/**
 * When each quorum queue of `vhost` last got a new leader in [since, until) (ms since
 * epoch), from the `-> leader in term` lines of `cluster`'s nodes' logs (other than `dead`):
 * Map(queue -> ms). The nodes log it at the moment of the election, to the microsecond.
 */
export function elections(cluster, vhost, since, until, dead) {
  const out = new Map();
  const re = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d) .*queue '([^']+)' in vhost '([^']+)': \w+ -> leader in term/;
  for (const n of NODES.filter((x) => x !== dead)) {
    const dir = path.join(cluster.dir, String(n), 'log');
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.log') && !f.includes('upgrade')); } catch { continue; }
    for (const f of files) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        const m = re.exec(line);
        if (!m || m[5] !== vhost) continue;
        const at = Date.parse(`${m[1]}T${m[2].slice(0, 12)}${m[3]}`);
        if (at >= since && at < until && at > (out.get(m[4]) ?? 0)) out.set(m[4], at);
      }
    }
  }
  return out;
}
