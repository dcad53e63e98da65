// Endurance runs, the sampler: every interval, each Courier process's RSS and CPU
// (`/proc/<pid>/status`, `/proc/<pid>/stat`), the broker's queue depth (partitions, retry
// and dead-letter queues, passive declares) and node RSS, Redis `used_memory`, and
// PostgreSQL's connections and largest tables. `slopes` fits RSS against time (least
// squares) after a warm-up, per process.

import { readFileSync } from 'node:fs';

import { DEFAULT_DLQ, DEFAULT_QUEUE_PREFIX, PARTITIONS } from './fault-common.mjs';
import { withAmqp } from './fault-probes.mjs';

const TICKS = 100; // USER_HZ on Linux

function proc(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { rssMb: rssKb / 1024, cpuSecs: (Number(fields[11]) + Number(fields[12])) / TICKS };
  } catch {
    return null;
  }
}

async function brokerDepth(d) {
  const queues = [...Array.from({ length: PARTITIONS }, (_, n) => `${DEFAULT_QUEUE_PREFIX}.${n}`), DEFAULT_DLQ];
  return withAmqp(d, async (conn) => {
    let total = 0;
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        total += (await ch.checkQueue(q)).messageCount;
        await ch.close().catch(() => {});
      } catch { /* not declared yet */ }
    }
    return total;
  });
}

export class Sampler {
  /** `stack`: {d, redis, rabbit} (instances from instances.mjs). */
  constructor(stack, t0) {
    this.stack = stack;
    this.t0 = t0;
    this.rows = [];
    this.prevCpu = new Map();
    this.prevAt = Date.now();
  }

  async take() {
    const { d, redis, rabbit } = this.stack;
    const now = Date.now();
    const secs = Math.max(0.001, (now - this.prevAt) / 1000);
    this.prevAt = now;
    const procs = {};
    for (const p of d.processes.filter((x) => x.running)) {
      const s = proc(p.pid);
      if (!s) continue;
      const prev = this.prevCpu.get(p.pid);
      this.prevCpu.set(p.pid, s.cpuSecs);
      procs[p.name] = { rssMb: round(s.rssMb), cpuPct: prev === undefined ? null : round((100 * (s.cpuSecs - prev)) / secs) };
    }
    const row = { atMin: round((now - this.t0) / 60_000, 2), procs };
    row.queueDepth = await brokerDepth(d).catch(() => null);
    const beam = rabbit.pids().map(proc).find(Boolean);
    row.rabbitRssMb = beam ? round(beam.rssMb) : null;
    const info = await redis.cli(['INFO', 'memory']).then((o) => o.stdout).catch(() => '');
    const used = /used_memory:(\d+)/.exec(info)?.[1];
    row.redisUsedMb = used ? round(Number(used) / 1048576) : null;
    const pg = await d.sqlJson(`SELECT json_build_object(
        'connections', (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
        'tables', (SELECT json_object_agg(relname, round(pg_total_relation_size(relid) / 1048576.0, 1))
                   FROM (SELECT relid, relname FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 4) t))`)
      .catch(() => null);
    row.pgConnections = pg?.connections ?? null;
    row.pgTablesMb = pg?.tables ?? null;
    this.rows.push(row);
    return row;
  }

  /** RSS slope in MB/min per process name, fitted over the samples at or after `warmupMin`. */
  slopes(warmupMin) {
    const names = new Set(this.rows.flatMap((r) => Object.keys(r.procs)));
    const out = {};
    for (const name of names) {
      const pts = this.rows.filter((r) => r.atMin >= warmupMin && r.procs[name]).map((r) => [r.atMin, r.procs[name].rssMb]);
      out[name] = pts.length >= 3 ? round(fit(pts), 3) : null;
    }
    const redis = this.rows.filter((r) => r.atMin >= warmupMin && r.redisUsedMb !== null).map((r) => [r.atMin, r.redisUsedMb]);
    out['redis used_memory'] = redis.length >= 3 ? round(fit(redis), 3) : null;
    return out;
  }

  /** One line per sample, for the console. */
  static line(row) {
    const procs = Object.entries(row.procs).map(([n, p]) => `${n} ${p.rssMb} MB ${p.cpuPct ?? '-'}%`).join(', ');
    return `+${row.atMin} min: ${procs}; queue ${row.queueDepth}; rabbitmq ${row.rabbitRssMb} MB; `
      + `redis ${row.redisUsedMb} MB; pg ${row.pgConnections} conns ${JSON.stringify(row.pgTablesMb)}`;
  }
}

/** Least-squares slope of [x, y] points. */
export function fit(pts) {
  const n = pts.length;
  const mx = pts.reduce((s, [x]) => s + x, 0) / n;
  const my = pts.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
