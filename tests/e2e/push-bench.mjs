// `scripts/bench.sh push`: how many Web Push notifications the pusher sends per second,
// and its CPU per push, on release binaries. A split deployment on the shared services
// (api, worker, gateway) plus a separate `pusher` process (its own PUSHER_PORT and
// METRICS_PORT; PUSH_DELAY_MS --delay-ms, PUSH_COALESCE_SECS --coalesce-secs,
// PUSH_ALLOW_HTTP_ENDPOINTS=true) and the local Web Push receiver (push-receivers.mjs,
// VAPID pinned; it verifies and decrypts the 1st and every --verify-every'th request and
// only records the others, so that it is not the bottleneck).
//
// --users recipients, made in SQL (as fault-scenario.mjs does), each offline with one Web
// Push subscription (POST /push/subscriptions) and in a direct chat with one sender; the
// sender posts --messages messages over REST (RATE_LIMIT_SEND_MAX raised) round-robin over
// the chats at --rate msg/s (open loop; 0: as fast as --concurrency requests in flight
// allow), so a chat gets a message every users/rate seconds: more than PUSH_COALESCE_SECS
// apart, every message makes a push (the bench warns when they are not). The run ends
// when the pusher has decided on every accepted message (its counters: sent + dropped +
// failed + pruned) and its queues are drained. Reports: pushes vs dropped (by reason: coalesced,
// online, read, ...) and failed from the pusher's /metrics; pushes/s sustained (receiver
// timestamps, first → last); the pusher's CPU µs per push (/proc/<pid>/stat
// utime+stime over the run ÷ pushes); api, worker and gateway CPU µs per message; the
// push lag p50/p90/p99/max (the message's sentAt → receipt, on the verified samples).
//
//   node push-bench.mjs [--users 2000] [--messages 4000] [--rate 200] [--delay-ms 0]
//     [--coalesce-secs 1|default] [--verify-every 10] [--concurrency 64]
//     [--drain-secs 120] [--out DIR]
//
// Exit status: 0 the run completed; 3 it ran but is incomplete (not every accepted message
// decided in --drain-secs, the receiver refused a request, or something dead-lettered);
// 1 it failed.

import { access, constants as fsConstants } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { Deployment, freePorts, settings, waitFor } from './harness.mjs';
import { mintRecipients, pool, postMessage, quantiles, setupCall } from './push-bench-load.mjs';
import { PushMetrics, waitDrained } from './push-helpers.mjs';
import { startWebPushReceiver, vapidKeys } from './push-receivers.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, v, i, all) => (i % 2 ? acc : [...acc, [v.replace(/^--/, ''), all[i + 1]]]), []));
const num = (name, fallback) => {
  const v = Number(args[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} ${args[name]}: a number ≥ 0`);
  return v;
};
const opts = {
  users: num('users', 2000),
  messages: num('messages', 4000),
  rate: num('rate', 200),
  delayMs: num('delay-ms', 0),
  coalesceSecs: args['coalesce-secs'] === 'default' ? null : num('coalesce-secs', 1),
  verifyEvery: Math.max(1, num('verify-every', 10)),
  concurrency: Math.max(1, num('concurrency', 64)),
  drainSecs: num('drain-secs', 120),
};
const SUBJECT = 'mailto:bench@example.com';
const QUEUE = 'chat.push'; // the default PUSH_QUEUE, in the run's own vhost
const log = (line) => process.stderr.write(`[push] ${line}\n`);

let clkTck = 100;
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { /* 100 */ }
function cpuSecs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / clkTck;
}

/** {labelValue: delta} of counter `name` between two scrapes, by `label`. */
function deltasBy(before, after, name, label) {
  const out = {};
  for (const s of after.series.filter((x) => x.name === name)) {
    const d = s.value - before(name, s.labels);
    if (d) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + d;
  }
  return out;
}
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
const decided = (m0, m) => [
  ['courier_push_sent_total', 'kind'], ['courier_push_dropped_total', 'reason'], ['courier_push_failed_total', 'reason'],
  ['courier_push_pruned_total', 'kind'],
].reduce((n, [name, label]) => n + sum(deltasBy(m0, m, name, label)), 0);

const pusherBin = path.join(settings.binDir, 'pusher');
await access(pusherBin, fsConstants.X_OK).catch(() => {
  process.stderr.write(`[push] no pusher binary at ${pusherBin}: build it (cargo build --release --bins) or set COURIER_BIN_DIR\n`);
  process.exit(1);
});

const vapid = vapidKeys();
const receiver = await startWebPushReceiver({
  vapidPublicKey: vapid.publicKey, vapidSubject: SUBJECT,
  verify: opts.verifyEvery > 1 ? 'sample' : 'all', sampleEvery: opts.verifyEvery,
});
const d = new Deployment({
  mode: 'split',
  env: {
    RATE_LIMIT_SEND_MAX: '100000000',
    PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    PUSH_VAPID_SUBJECT: SUBJECT,
    PUSH_DELAY_MS: String(opts.delayMs),
    ...(opts.coalesceSecs === null ? {} : { PUSH_COALESCE_SECS: String(opts.coalesceSecs) }),
    PUSH_ALLOW_HTTP_ENDPOINTS: 'true',
  },
});
let status = 1;
try {
  await d.start();
  const [pusherPort, metricsPort] = await freePorts(2);
  d.spawn('pusher', 'pusher', `http://127.0.0.1:${pusherPort}`,
    { PUSHER_PORT: String(pusherPort), METRICS_PORT: String(metricsPort) });
  await d.process('pusher').waitReady();
  const metrics = new PushMetrics(`http://127.0.0.1:${metricsPort}`);

  log(`${opts.users} recipients, their direct chats and Web Push subscriptions`);
  const { sender, recipients } = await mintRecipients(d, opts.users);
  const chats = await pool(recipients, 8, async (r) => {
    const chat = await setupCall(d, 'POST', '/chats',
      { token: sender.accessToken, body: { type: 'direct', participantIds: [r.user.id] } }, [201]);
    await setupCall(d, 'POST', '/push/subscriptions', { token: r.accessToken, body: receiver.newSubscription() }, [201]);
    return chat.id;
  });

  const gap = opts.rate > 0 ? opts.users / opts.rate : null;
  const coalesce = opts.coalesceSecs ?? 30;
  if (gap !== null && gap <= coalesce) {
    log(`warning: a chat gets a message every ${gap.toFixed(1)} s, within PUSH_COALESCE_SECS ${coalesce}: many will be coalesced`);
  }
  const procs = ['api', 'worker', 'gateway-1', 'pusher'].map((n) => d.process(n));
  const m0 = await metrics.scrape();
  const cpu0 = procs.map((p) => cpuSecs(p.pid));
  const node0 = process.cpuUsage();
  const postStart = new Array(opts.messages);
  const errors = {};
  let accepted = 0;

  log(`sending ${opts.messages} messages at ${opts.rate || 'max'} msg/s`);
  const t0 = Date.now();
  await pool(Array.from({ length: opts.messages }, (_, k) => k), opts.concurrency, async (k) => {
    if (opts.rate > 0) {
      const wait = t0 + (k * 1000) / opts.rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    postStart[k] = Date.now();
    const res = await postMessage(d.apiUrl, sender.accessToken, chats[k % chats.length], `push-bench ${k}`);
    if (res === 202) accepted += 1; else errors[res] = (errors[res] ?? 0) + 1;
  });
  const sendSecs = (Date.now() - t0) / 1000;
  log(`${accepted} accepted in ${sendSecs.toFixed(1)} s; waiting for the pusher to decide on each`);

  let m1 = m0;
  let complete = true;
  const alive = () => procs.every((p) => p.running);
  await waitFor(async () => {
    if (!alive()) return true; // failed below
    m1 = await metrics.scrape();
    return decided(m0, m1) >= accepted;
  }, opts.drainSecs * 1000, { intervalMs: 200, message: () => `decisions on ${accepted} messages (have ${decided(m0, m1)})` })
    .catch((err) => { complete = false; log(err.message); });
  // The active window ends here (for the share of a core); a coalesced flush may still
  // push after it, so the CPU per push and per message is taken once the queues are drained.
  d.assertAlive();
  const cpu1 = procs.map((p) => cpuSecs(p.pid));
  const node1 = process.cpuUsage(node0);
  const windowSecs = (Date.now() - t0) / 1000;
  const queues = await waitDrained(d, QUEUE, 60_000).catch((err) => { complete = false; log(err.message); return []; });
  d.assertAlive();
  const m2 = await metrics.scrape();
  const cpu2 = procs.map((p) => cpuSecs(p.pid));

  const got = receiver.pushes();
  const at = got.map((p) => p.at);
  const first = at.reduce((a, b) => Math.min(a, b), Infinity);
  const last = at.reduce((a, b) => Math.max(a, b), -Infinity);
  const spanSecs = got.length > 1 ? (last - first) / 1000 : 0;
  const samples = got.filter((p) => p.verified);
  const lag = quantiles(samples.map((p) => p.at - Date.parse(p.payload.sentAt)));
  const clientLag = quantiles(samples.map((p) => p.at - postStart[Number(/push-bench (\d+)$/.exec(p.payload.body)?.[1])])
    .filter(Number.isFinite));
  const ids = samples.map((p) => p.payload.messageId);
  const perSecond = {};
  for (const a of at) { const s = Math.floor((a - t0) / 1000); perSecond[s] = (perSecond[s] ?? 0) + 1; }
  const sent = deltasBy(m0, m2, 'courier_push_sent_total', 'kind');
  const pushes = sum(sent);
  const hist = (name) => {
    const n = m2(`${name}_count`) - m0(`${name}_count`);
    return n ? Math.round((1000 * (m2(`${name}_sum`) - m0(`${name}_sum`))) / n) : null;
  };
  const cpu = Object.fromEntries(procs.map((p, i) => [p.name, Math.round(1e6 * (cpu2[i] - cpu0[i]))]));
  const pusherActiveUs = 1e6 * (cpu1[3] - cpu0[3]);
  const result = {
    options: { ...opts, coalesceSecs: coalesce, chatGapSecs: gap },
    messages: { offered: opts.messages, accepted, errors, sendSecs, ratePerSec: accepted / sendSecs },
    pushes: {
      sent, received: got.length, dropped: deltasBy(m0, m2, 'courier_push_dropped_total', 'reason'),
      failed: deltasBy(m0, m2, 'courier_push_failed_total', 'reason'),
      retried: m2('courier_push_retried_total') - m0('courier_push_retried_total'),
      pruned: m2('courier_push_pruned_total') - m0('courier_push_pruned_total'),
      handlingErrors: m2('courier_push_handling_errors_total') - m0('courier_push_handling_errors_total'),
      receiverFailures: receiver.failures.length, duplicateSamples: ids.length - new Set(ids).size,
      firstToLastSecs: spanSecs, perSecSustained: spanSecs > 0 ? (got.length - 1) / spanSecs : null,
      perSecondTimeline: perSecond,
    },
    lagMs: { ...lag, samples: samples.length, pusherMean: hist('courier_push_lag_seconds'), fromPostStart: clientLag },
    sendMsMean: hist('courier_push_send_seconds'),
    cpu: {
      windowSecs, usByProcess: cpu, nodeBenchUs: node1.user + node1.system,
      pusherUsPerPush: pushes ? Math.round(cpu.pusher / pushes) : null,
      pusherCorePct: Math.round((100 * pusherActiveUs) / 1e6 / windowSecs),
      usPerMessage: Object.fromEntries(['api', 'worker', 'gateway-1'].map((n) => [n, accepted ? Math.round(cpu[n] / accepted) : null])),
    },
    queues,
    complete,
  };
  const dlq = queues.find((q) => q.name === `${QUEUE}.dlq`)?.messages ?? 0;
  complete &&= receiver.failures.length === 0 && dlq === 0;
  result.complete = complete;

  const r = result;
  const f1 = (x) => (x === null || x === undefined ? '-' : Number(x).toFixed(1));
  process.stdout.write([
    `push bench: ${opts.users} offline users (Web Push), ${opts.messages} messages at ${opts.rate || 'max'} msg/s; `
      + `PUSH_DELAY_MS ${opts.delayMs}, PUSH_COALESCE_SECS ${coalesce}${gap === null ? '' : `, a message per chat every ${gap.toFixed(1)} s`}`,
    `messages   ${accepted} accepted (202) in ${f1(sendSecs)} s = ${f1(r.messages.ratePerSec)} msg/s; errors ${JSON.stringify(errors)}`,
    `pushes     ${pushes} sent ${JSON.stringify(sent)} = ${f1((100 * pushes) / Math.max(1, accepted))} % of accepted messages `
      + `(receiver got ${got.length}); dropped ${JSON.stringify(r.pushes.dropped)}; `
      + `failed ${JSON.stringify(r.pushes.failed)}; retried ${r.pushes.retried}; pruned ${r.pushes.pruned}; handling errors ${r.pushes.handlingErrors}`,
    `throughput ${f1(r.pushes.perSecSustained)} pushes/s sustained (first → last receipt over ${f1(spanSecs)} s)`,
    `lag        p50 ${lag.p50} ms  p90 ${lag.p90}  p99 ${lag.p99}  max ${lag.max}  (sentAt → receipt, ${samples.length} verified samples; `
      + `pusher's mean ${r.lagMs.pusherMean ?? '-'} ms; HTTP send mean ${r.sendMsMean ?? '-'} ms)`,
    `CPU        pusher ${r.cpu.pusherUsPerPush ?? '-'} µs/push (${r.cpu.pusherCorePct} % of a core over ${f1(windowSecs)} s); per message: `
      + `api ${r.cpu.usPerMessage.api} µs, worker ${r.cpu.usPerMessage.worker} µs, gateway ${r.cpu.usPerMessage['gateway-1']} µs; `
      + `bench (node) ${Math.round(r.cpu.nodeBenchUs / 1e3)} ms`,
    `checks     receiver refused ${receiver.failures.length}; duplicate messages in samples ${r.pushes.duplicateSamples}; DLQ ${dlq}; `
      + `${complete ? 'complete' : 'INCOMPLETE'}`,
  ].join('\n') + '\n');
  const dir = args.out ?? 'bench-results';
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `push-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  process.stdout.write(`results: ${file}\n`);
  status = complete ? 0 : 3;
} catch (err) {
  process.stderr.write(`[push] failed: ${err.stack ?? err}\n`);
  d.dumpLogs('after the failure of the push bench');
} finally {
  await d.stop().catch((err) => process.stderr.write(`[push] teardown: ${err.message}\n`));
  await receiver.close();
}
process.exit(status);
