// Fault-injection toolkit, the local 3-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh:
// starting it (idempotent), the deployment's `RABBITMQ_URIS`, which node leads which
// partition queue of a vhost, killing (kill -9 of its Erlang VM) and restarting a node,
// waiting for new leaders and for every quorum queue to have all its members online; and
// the figures of a node loss (refused window, dark window) from a scenario's ledger and
// clients.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEFAULT_QUEUE_PREFIX, PARTITIONS } from './fault-common.mjs';
import { run, sleep } from './harness.mjs';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/rabbitmq-cluster.sh');
const NODES = [1, 2, 3];

/** Runs scripts/rabbitmq-cluster.sh with `args`; resolves its trimmed stdout. */
export async function clusterScript(args, timeoutMs = 240_000) {
  const { stdout } = await run(SCRIPT, args, { timeoutMs });
  return stdout.trim();
}

/**
 * The cluster (started if it is not running). `services` points the deployment's
 * rabbitmqctl (vhost, permissions) at node 1; `stop()` only makes sure every node runs
 * again: the cluster outlives the test, which isolates itself with its own vhost.
 */
export async function startCluster() {
  await clusterScript(['start']);
  const nodes = {};
  for (const n of NODES) {
    nodes[n] = { name: await clusterScript(['node', String(n)]), port: Number(await clusterScript(['port', String(n)])) };
  }
  return {
    kind: 'rabbitmq-cluster',
    nodes,
    services: { rabbitHost: '127.0.0.1', rabbitPort: nodes[1].port, rabbitmqctlArgs: ['-n', nodes[1].name] },
    uris: (vhost) => clusterScript(['uris', vhost]),
    async stop() { await clusterScript(['start']); },
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
export async function killNode(n) {
  const pid = Number(await clusterScript(['pid', String(n)]));
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
export async function restartNode(n) {
  await clusterScript(['start-node', String(n)]);
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
 * max(accepted, `electedAt`) to its first live arrival on any socket.
 */
export async function lossFigures(s, killAt, electedAt) {
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
      const late = at - Math.max(rec.acceptedAt, electedAt);
      if (late > lateMaxMs) { lateMaxMs = late; lateWhat = `${rec.sender} "${rec.content}"`; }
    }
  }
  return {
    refused: refused.length,
    refusedFromMs: refused.length ? refused[0] - killAt : null,
    refusedToMs: refused.length ? refused.at(-1) - killAt : null,
    electedAfterMs: electedAt - killAt,
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
 * When each 503 of `d`'s api processes was answered, per dependency (from their
 * `dependency unavailable` log lines): {rabbitmq: [ms since epoch], postgres: [...]}.
 */
export function refusalsByDependency(d) {
  const out = {};
  for (const p of d.processes.filter((x) => x.binaryName === 'api' || x.binaryName === 'courier')) {
    for (const line of p.stderr.toString().split('\n')) {
      if (!line.includes('unavailable')) continue;
      try {
        const j = JSON.parse(line);
        const f = { ...j, ...j.fields };
        const dep = f.dependency ?? (f.message === 'database unavailable' ? 'postgres' : null);
        if (dep && /unavailable/.test(f.message)) (out[dep] ??= []).push(Date.parse(f.timestamp));
      } catch { /* not JSON */ }
    }
  }
  return out;
}
