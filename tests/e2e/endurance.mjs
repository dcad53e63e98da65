// Endurance runs of Courier: `soak` (a fixed rate for a long time, sampled every
// interval, RSS slopes fitted) and `chaos` (steady traffic while a fault is injected at
// random: kill -9 of an api, a worker or a gateway, restarted as a supervisor would, and
// restarts of RabbitMQ, Redis and PostgreSQL). Both end with the verdict of
// endurance-verify.mjs. `scripts/bench.sh soak|chaos` runs them on release binaries;
// endurance-*.test.mjs run a one-minute version in the suite.
//
//   node endurance.mjs soak  [--duration 1800] [--rate 600] [--warmup 5] [--sample-every 60]
//   node endurance.mjs chaos [--duration 1800] [--rate 500] [--every 60-180] [--seed N]
//   common: [--users 16] [--out DIR] (JSON results there)
//
// Exit status: 0 every target met, 3 a target missed (figures written), 1 the run failed.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { awaitClients, awaitPersisted, verify } from './endurance-verify.mjs';
import { Sampler } from './endurance-sample.mjs';
import { buildWorld, startStack } from './endurance-stack.mjs';
import { sleep } from './harness.mjs';

const KINDS = ['kill api', 'kill worker', 'kill gateway', 'restart rabbitmq', 'restart redis', 'restart postgres'];

export const DEFAULTS = {
  soak: { durationSecs: 1800, rate: 600, warmupMin: 5, sampleEverySecs: 60, bounceEverySecs: 60, interact: true },
  chaos: { durationSecs: 1800, rate: 500, everySecs: [60, 180], sampleEverySecs: 60, interact: true },
};

/** A small seeded PRNG (mulberry32), so a chaos run can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Injects one fault of `kind`; resolves {kind, target, downAt, upAt} (ms since t0). */
async function inject(stack, kind, random, t0) {
  const { d } = stack;
  const downAt = Date.now() - t0;
  let target;
  if (kind.startsWith('kill ')) {
    const role = kind.slice(5);
    const names = [...new Set(d.processes.filter((p) => p.binaryName === role).map((p) => p.name))];
    target = names[Math.floor(random() * names.length)];
    await d.process(target).kill('SIGKILL');
    await d.restart(target);
  } else {
    target = kind.slice(8);
    const inst = { rabbitmq: stack.rabbit, redis: stack.redis, postgres: stack.pg }[target];
    await inst.down();
    await inst.up();
  }
  return { kind, target, downAt, upAt: Date.now() - t0 };
}

/**
 * Runs one endurance scenario. `mode`: 'soak' | 'chaos'; options override DEFAULTS[mode]
 * (chaos `kinds`: the order of faults, cycled, instead of drawing them at random).
 * Resolves the result (figures, verdict, `pass`).
 */
export async function runEndurance(mode, options = {}) {
  const o = { ...DEFAULTS[mode], users: 16, seed: Date.now() % 1_000_000, log: (s) => process.stderr.write(`${s}\n`), ...options };
  const durationMs = o.durationSecs * 1000;
  const stack = await startStack({
    gateways: 2,
    workers: mode === 'chaos' ? 2 : 1,
    env: {
      RUST_LOG: 'warn',
      // Many messages per user: the per-user send limit stays on, raised above the traffic.
      RATE_LIMIT_SEND_MAX: '10000000',
      ...(o.env ?? {}),
    },
  });
  const t0 = Date.now();
  const world = await buildWorld(stack.d, { users: o.users, t0, tokenTtlSecs: o.durationSecs + 7200, interact: o.interact });
  const sampler = new Sampler(stack, t0);
  const faults = [];
  let stopped = false;
  try {
    o.log(`[${mode}] ${o.rate} msg/s for ${o.durationSecs} s over ${world.chats.length} chats, ${world.lanes.lanes.length} lanes, `
      + `${world.clients.length} devices${mode === 'chaos' ? `, seed ${o.seed}` : ''}`);
    await sampler.take();
    const traffic = world.lanes.run(o.rate, durationMs);
    const loops = [];
    loops.push((async () => {
      while (!stopped) {
        await sleep(o.sampleEverySecs * 1000);
        if (stopped) break;
        const row = await sampler.take();
        const c = world.lanes.counts();
        o.log(`[${mode}] ${Sampler.line(row)}; sent ${c.sent}, accepted ${c.accepted}, faults ${faults.length}`);
      }
    })());
    if (mode === 'soak' && o.bounceEverySecs) {
      const random = prng(o.seed);
      loops.push((async () => {
        while (!stopped) {
          await sleep(o.bounceEverySecs * 1000);
          if (!stopped) world.clients[Math.floor(random() * world.clients.length)].bounce();
        }
      })());
    }
    if (mode === 'chaos') {
      const random = prng(o.seed);
      const [lo, hi] = o.everySecs;
      loops.push((async () => {
        for (let n = 0; ; n++) {
          await sleep((lo + random() * (hi - lo)) * 1000);
          if (stopped || Date.now() - t0 > durationMs - lo * 500) break;
          const kind = o.kinds ? o.kinds[n % o.kinds.length] : KINDS[Math.floor(random() * KINDS.length)];
          const f = await inject(stack, kind, random, t0);
          faults.push(f);
          o.log(`[chaos] +${(f.downAt / 1000).toFixed(1)} s ${f.kind} (${f.target}): back after ${f.upAt - f.downAt} ms`);
        }
      })());
    }
    await traffic;
    stopped = true;
    await Promise.all(loops);
    const counts = world.lanes.counts();
    const stored = await awaitPersisted(stack.d, counts.accepted);
    const settled = await awaitClients(stack.d, world.clients);
    await sampler.take();
    const verdict = await verify(stack.d, world, faults);
    const stats = Object.fromEntries(Object.keys(world.clients[0].stats).map((k) => [k, world.clients.reduce((n, c) => n + c.stats[k], 0)]));
    const result = {
      mode, startedAt: new Date(t0).toISOString(), options: { ...o, log: undefined },
      counts, stored, clientsSettled: settled, sends: world.lanes.totals, sendSamples: world.lanes.samples,
      clients: stats, verdict, samples: sampler.rows,
    };
    result.targets = targets(mode, result, sampler, o);
    result.pass = result.targets.every((t) => t.pass);
    return result;
  } finally {
    stopped = true;
    for (const c of world.clients) c.close();
    world.lanes.close();
    await stack.stop();
  }
}

function targets(mode, r, sampler, o) {
  const v = r.verdict;
  const list = [
    { name: 'lost, duplicated, gaps, undelivered, unknown, out of order', value: v.problems.join(' ') || 'none', pass: v.problems.length === 0 },
    { name: 'messages given up by senders', value: r.counts.gaveUp + r.counts.refused, pass: r.counts.gaveUp + r.counts.refused === 0 },
  ];
  if (mode === 'soak') {
    r.slopesMbPerMin = sampler.slopes(o.warmupMin);
    for (const [name, slope] of Object.entries(r.slopesMbPerMin)) {
      const what = name.startsWith('redis') ? name : `${name} RSS`;
      list.push({ name: `${what} slope after ${o.warmupMin} min (MB/min, <= 0.1)`, value: slope, pass: slope !== null && slope <= 0.1 });
    }
  } else {
    for (const f of v.faults) {
      list.push({ name: `${f.kind} (${f.target}) at +${(f.downAt / 1000).toFixed(0)} s: dark after back up (ms, <= 2000)`, value: f.darkAfterUpMs, pass: f.darkAfterUpMs <= 2000 });
    }
  }
  return list;
}

/** The console summary of a result. */
export function summary(r) {
  const v = r.verdict;
  const lines = [
    `${r.mode}: sent ${r.counts.sent}, accepted ${r.counts.accepted}, stored ${v.persisted} (not accepted but stored ${v.persistedNotAccepted})`,
    `  sends: ${JSON.stringify(r.sends)}`,
    `  devices: ${JSON.stringify(r.clients)}`,
    `  e2e latency ms: ${JSON.stringify(v.latencyMs)}; not live (sync only): ${v.notLive}`,
  ];
  if (r.slopesMbPerMin) {
    lines.push(...table(r.samples));
    lines.push(`  RSS slopes MB/min: ${JSON.stringify(r.slopesMbPerMin)}`);
  }
  for (const f of v.faults) {
    lines.push(`  fault ${f.kind} (${f.target}) at +${(f.downAt / 1000).toFixed(1)} s: outage ${f.outageMs} ms, dark after back up ${f.darkAfterUpMs} ms `
      + `(sends refused until +${f.refusedAfterUpMs} ms; slowest delivery +${f.lateAfterUpMs} ms: ${f.worst ?? '-'})`);
  }
  for (const s of [...v.samples, ...v.clientSamples, ...r.sendSamples].slice(0, 20)) lines.push(`  ! ${s}`);
  for (const t of r.targets) lines.push(`  [${t.pass ? 'ok' : 'MISSED'}] ${t.name}: ${t.value}`);
  return lines.join('\n');
}

/** The samples as a table: minute, RSS MB and CPU % of each process, then the services. */
function table(samples) {
  const names = [...new Set(samples.flatMap((x) => Object.keys(x.procs)))];
  const cell = (v, w = 7) => String(v ?? '-').padStart(w);
  const head = ['  min', ...names.map((n) => cell(`${n} MB`, 14)), ...names.map((n) => cell(`${n} %`, 14)),
    cell('queue'), cell('rabbit MB', 10), cell('redis MB', 9), cell('pg conns', 9), cell('messages MB', 12)].join(' ');
  return [head, ...samples.map((x) => [cell(x.atMin, 5), ...names.map((n) => cell(x.procs[n]?.rssMb, 14)),
    ...names.map((n) => cell(x.procs[n]?.cpuPct, 14)), cell(x.queueDepth), cell(x.rabbitRssMb, 10),
    cell(x.redisUsedMb, 9), cell(x.pgConnections, 9), cell(x.pgTablesMb?.messages, 12)].join(' '))];
}

function parseArgs(argv) {
  const [mode, ...rest] = argv;
  if (!DEFAULTS[mode]) throw new Error('usage: node endurance.mjs soak|chaos [--duration S] [--rate N] ...');
  const o = {};
  const num = (v) => { const n = Number(v); if (!Number.isFinite(n)) throw new Error(`not a number: ${v}`); return n; };
  for (let i = 0; i < rest.length; i += 2) {
    const [k, v] = [rest[i], rest[i + 1]];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--duration') o.durationSecs = num(v);
    else if (k === '--rate') o.rate = num(v);
    else if (k === '--warmup') o.warmupMin = num(v);
    else if (k === '--sample-every') o.sampleEverySecs = num(v);
    else if (k === '--bounce-every') o.bounceEverySecs = num(v);
    else if (k === '--every') o.everySecs = v.split('-').map(num);
    else if (k === '--seed') o.seed = num(v);
    else if (k === '--users') o.users = num(v);
    else if (k === '--out') o.out = v;
    else throw new Error(`unknown option ${k}`);
  }
  return { mode, o };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const { mode, o } = parseArgs(process.argv.slice(2));
    const r = await runEndurance(mode, o);
    process.stdout.write(`${summary(r)}\n`);
    const dir = o.out ?? 'bench-results';
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${mode}-${r.startedAt.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(r, null, 1)}\n`);
    process.stdout.write(`results: ${file}\n`);
    process.exit(r.pass ? 0 : 3);
  } catch (err) {
    process.stderr.write(`[endurance] failed: ${err.stack ?? err}\n`);
    process.exit(1);
  }
}
