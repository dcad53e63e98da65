// Fault-injection toolkit, probes and faults: /readyz watching, readiness, AMQP access to
// the deployment's vhost, a gateway's Redis routing state, and `outage` (a service
// instance taken down and up mid-stream) with its /readyz assertion.

import assert from 'node:assert/strict';

import amqplib from 'amqplib';

import { DEFAULT_QUEUE_PREFIX, PARTITIONS, eventually, faultSettings } from './fault-common.mjs';
import { sleep, waitFor } from './harness.mjs';

/**
 * Polls GET /readyz of `targets` ({name, url}) every `intervalMs` until `stop()`,
 * which resolves {name: {polls, non200: [{status, body, ms}], errors}}; `answered()`
 * says whether every target has answered (or failed) a first poll.
 */
export function watchReadyz(targets, intervalMs = 200) {
  const seen = Object.fromEntries(targets.map((t) => [t.name, { polls: 0, non200: [], errors: 0 }]));
  const first = new Set();
  let stopped = false;
  const loops = targets.map(async (t) => {
    while (!stopped) {
      const rec = seen[t.name];
      rec.polls++;
      const started = Date.now();
      try {
        const res = await fetch(`${t.url}/readyz`, { signal: AbortSignal.timeout(6000) });
        const body = await res.text();
        if (res.status !== 200) rec.non200.push({ status: res.status, body: body.slice(0, 300), ms: Date.now() - started });
      } catch {
        rec.errors++;
      }
      first.add(t.name);
      await sleep(intervalMs);
    }
  });
  return {
    answered: () => first.size === targets.length,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return seen;
    },
  };
}

/** Whether a readyz record saw a 503 naming `dependency`. */
export const namedInReadyz = (rec, dependency) =>
  rec.non200.some((r) => r.status === 503 && r.body.includes(dependency));

/** Waits until every process of the deployment that is running answers /readyz 200. */
export async function allReady(d, timeoutMs = 40_000) {
  const procs = d.processes.filter((p) => p.running);
  const ok = await eventually(async () => {
    const answers = await Promise.all(procs.map((p) => fetch(`${p.healthUrl}/readyz`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.status).catch(() => 0)));
    return answers.every((s) => s === 200);
  }, timeoutMs, 250);
  assert.ok(ok, `not every process is ready again ${timeoutMs} ms after the fault`);
}

/** Runs `fn(connection)` on an AMQP connection to the deployment's broker and vhost. */
export async function withAmqp(d, fn) {
  const ep = d.infra.endpoints;
  const url = `amqp://${encodeURIComponent(ep.rabbitUser)}:${encodeURIComponent(ep.rabbitPassword)}@${ep.rabbitHost}:${ep.rabbitPort}/${encodeURIComponent(d.vhost)}`;
  const conn = await amqplib.connect(url);
  conn.on('error', () => {});
  try {
    return await fn(conn);
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * Waits until every partition queue of the deployment's vhost has `n` consumers, active
 * or waiting (a standby worker under single active consumer is one; the queue's own
 * consumer count shows only the active one).
 */
export async function partitionConsumers(d, n, timeoutMs = 20_000) {
  let counts = new Map();
  await waitFor(async () => {
    const { stdout } = await d.infra.rabbitmqctl(['-q', 'list_consumers', '--no-table-headers', '-p', d.vhost, 'queue_name']);
    counts = new Map();
    for (const q of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) counts.set(q, (counts.get(q) ?? 0) + 1);
    return Array.from({ length: PARTITIONS }, (_, p) => counts.get(`${DEFAULT_QUEUE_PREFIX}.${p}`) ?? 0).every((c) => c >= n);
  }, timeoutMs, { intervalMs: 200, message: () => `${n} consumers on every partition: ${JSON.stringify([...counts])}` });
}

/** Reads the Redis routing state of gateway `gatewayId` under the deployment's prefix. */
export async function gatewayRoutingState(d, gatewayId, userIds) {
  const p = d.redisPrefix;
  const cli = (args) => d.infra.redisCli(args).then((r) => r.stdout.trim());
  const score = await cli(['ZSCORE', `${p}gateways`, gatewayId]);
  const sockets = Number(await cli(['SCARD', `${p}gateway:${gatewayId}:sockets`]));
  let userEntries = 0;
  for (const u of userIds) {
    const vals = (await cli(['HVALS', `${p}user:${u}:sockets`])).split('\n').filter(Boolean);
    userEntries += vals.filter((g) => g === gatewayId).length;
  }
  return { registered: score !== '', sockets, userEntries };
}

/**
 * Takes `inst` (an instances.mjs instance) down for `downMs` mid-stream and back up,
 * watching /readyz of `watch` (process names) meanwhile; waits until every process is
 * ready again. Resolves the readyz observations per process. With `until` (a predicate),
 * the service stays down past `downMs` until it holds, for at most `maxDownMs`: a fault
 * sized by what happened during it (e.g. a backlog of N messages) rather than by time,
 * so a slow machine gets the same fault as a fast one.
 */
export async function outage(s, inst, { downMs = faultSettings.downMs, until = null, maxDownMs = 20_000, watch }) {
  const targets = watch.map((name) => ({ name, url: s.d.process(name).healthUrl }));
  const watcher = watchReadyz(targets);
  // A first answer of every process before the fault: the watch covers all of it.
  await waitFor(watcher.answered, 10_000, { message: 'a first /readyz answer of every watched process' });
  s.mark(`${inst.kind} down`);
  try {
    await inst.down();
    s.downAt = Date.now();
    await sleep(downMs);
    if (until && !(await eventually(until, Math.max(0, maxDownMs - downMs), 50))) {
      s.mark(`${inst.kind} stayed down ${maxDownMs} ms without the condition`);
    }
  } finally {
    await inst.up();
    s.upAt = Date.now();
    s.mark(`${inst.kind} up`);
  }
  try {
    await allReady(s.d);
    s.mark('every process ready again');
  } finally {
    s.readyz = await watcher.stop();
  }
  return s.readyz;
}

/** Asserts that /readyz of each of `names` answered 503 naming `dependency` during the outage. */
export function assertReadyzNamed(s, names, dependency) {
  const silent = names.filter((n) => !namedInReadyz(s.readyz[n], dependency));
  assert.deepEqual(silent, [], `/readyz did not answer 503 naming ${dependency} during the outage: `
    + silent.map((n) => `${n} ${JSON.stringify({ ...s.readyz[n], non200: s.readyz[n].non200.slice(0, 3) })}`).join('; '));
}
