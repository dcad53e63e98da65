// `scripts/bench.sh flood`: a bystander's delivery latency while another user floods the
// gateway with events, on release binaries. A split deployment on the shared services;
// the bystander's latency (REST send → `chat.message.new` on another user's socket, one
// at a time) is measured idle, during each flood, and idle again; each flood is
// `chat.typing` + `chat.sync` from several sockets of one user at a multiple of the
// per-socket limit (RATE_LIMIT_SOCKET_EVENTS, 20/s). Prints p50/p90/p99 and the ratio to
// idle (target: ≤ 2), and the gateway's CPU per flooded event.
//
//   node flood-bench.mjs [--samples 200] [--floods 5x500,10x2000] [--out DIR]

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { latency, startFlood } from './flood.mjs';
import { Deployment } from './harness.mjs';
import { directPair } from './realtime-helpers.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, v, i, all) => (i % 2 ? acc : [...acc, [v.replace(/^--/, ''), all[i + 1]]]), []));
const samples = Number(args.samples ?? 200);
const floods = (args.floods ?? '5x500,10x2000').split(',').map((f) => f.split('x').map(Number));

function cpuSecs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

// The bystander sends ~1,000 messages a minute: above the default per-user send limit.
const d = new Deployment({ mode: 'split', env: { RATE_LIMIT_SEND_MAX: '1000000' } });
let status = 1;
try {
  await d.start();
  const { a: alice, b: bob, chat } = await directPair(d);
  const [mallory, victim] = await d.registerAll('mallory', 'victim');
  const target = await d.createDirect(mallory.accessToken, victim.user.id);
  const listener = await d.connect(0, bob.accessToken, { label: 'bob' });
  const pair = { sender: alice, chat, listener };
  const gw = d.process('gateway-1').pid;
  await latency(d, pair, 'warm-up', 50);
  const rows = [{ phase: 'idle', ...(await latency(d, pair, 'idle', samples)) }];
  for (const [sockets, rate] of floods) {
    const flood = await startFlood(d.gateway(0), mallory.accessToken, target.id, sockets, rate);
    const [cpu0, t0] = [cpuSecs(gw), Date.now()];
    let counts;
    let during;
    try {
      during = await latency(d, pair, 'flood', samples);
      counts = await flood.stop();
    } finally {
      flood.kill();
    }
    const gwCpuPct = (100 * (cpuSecs(gw) - cpu0)) / ((Date.now() - t0) / 1000);
    rows.push({ phase: `flood ${sockets} sockets x ${rate / sockets}/s`, ...during, counts, gatewayCpuPct: Math.round(gwCpuPct) });
    rows.push({ phase: 'idle again', ...(await latency(d, pair, 'idle again', samples)) });
  }
  let pass = true;
  for (let i = 1; i < rows.length; i += 2) {
    const idle = { p50: (rows[i - 1].p50 + rows[i + 1].p50) / 2, p90: (rows[i - 1].p90 + rows[i + 1].p90) / 2 };
    rows[i].ratioP50 = Math.round((100 * rows[i].p50) / Math.max(1, idle.p50)) / 100;
    rows[i].ratioP90 = Math.round((100 * rows[i].p90) / Math.max(1, idle.p90)) / 100;
    pass &&= rows[i].ratioP50 <= 2 && rows[i].ratioP90 <= 2;
  }
  for (const r of rows) {
    process.stdout.write(`${r.phase.padEnd(28)} p50 ${r.p50} ms  p90 ${r.p90}  p99 ${r.p99}  max ${r.max}`
      + `${r.ratioP50 ? `  ratio to idle p50 ${r.ratioP50} p90 ${r.ratioP90}  gateway CPU ${r.gatewayCpuPct}%  acks ${JSON.stringify(r.counts)}` : ''}\n`);
  }
  const dir = args.out ?? 'bench-results';
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `flood-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ samples, rows, pass }, null, 1)}\n`);
  process.stdout.write(`target (flood latency ≤ 2× idle, p50 and p90): ${pass ? 'met' : 'MISSED'}\nresults: ${file}\n`);
  status = pass ? 0 : 3;
} catch (err) {
  process.stderr.write(`[flood] failed: ${err.stack ?? err}\n`);
} finally {
  await d.stop();
}
process.exit(status);
