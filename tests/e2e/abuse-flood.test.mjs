// Abuse: an event flood (issue 13's proof). A user floods the gateway with
// `chat.typing` and `chat.sync` from several sockets at 10 times the per-socket limit;
// the flood's acks are `rate_limited`, and a bystander's delivery latency (REST send →
// `chat.message.new` on another user's socket) stays within twice its idle value. The
// flood runs in a child process, so it does not share the measuring event loop; the
// figures are printed.

import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { useDeployment } from './harness.mjs';
import { directPair, waitEvent } from './realtime-helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const d = useDeployment({ mode: 'split' });

const SAMPLES = 25;
const FLOOD_RATE = 1000; // events per second over 5 sockets: 10 times the limit of 20 per socket

/** Median delivery latency (ms) of `SAMPLES` sends from `alice` to `listener`, one at a time. */
async function latency(alice, chat, listener, label) {
  const ms = [];
  for (let i = 0; i < SAMPLES; i += 1) {
    const since = listener.events.length;
    const t0 = Date.now();
    const sent = await d.send(alice.accessToken, chat.id, `${label} ${i}`);
    const e = await waitEvent(listener, 'chat.message.new',
      (p) => p.message?.clientMessageId === sent.clientMessageId, { since, timeoutMs: 10_000 });
    ms.push(e.at - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(SAMPLES / 2)], p90: ms[Math.floor(SAMPLES * 0.9)] };
}

d.test('an event flood is rate limited and a bystander keeps its latency', { timeout: 120_000 }, async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [mallory, victim] = await d.registerAll('mallory', 'victim');
  const target = await d.createDirect(mallory.accessToken, victim.user.id);
  const listener = await d.connect(0, bob.accessToken, { label: 'bob' });
  await latency(alice, chat, listener, 'warm-up');
  const idle = await latency(alice, chat, listener, 'idle');

  const flood = fork(path.join(here, 'flood-client.mjs'),
    [d.gateway(0), mallory.accessToken, target.id, '5', String(FLOOD_RATE)], { stdio: 'inherit' });
  try {
    const [ready] = await once(flood, 'message');
    assert.equal(ready, 'flooding');
    const during = await latency(alice, chat, listener, 'flood');
    flood.send('stop');
    const [counts] = await once(flood, 'message');
    console.log(`# bystander delivery latency, ms: idle p50 ${idle.p50} p90 ${idle.p90}; `
      + `during the flood p50 ${during.p50} p90 ${during.p90}; flood acks ${JSON.stringify(counts)}`);
    assert.ok(counts.limited > counts.ok * 10, `the flood is refused: ${JSON.stringify(counts)}`);
    assert.ok(counts.ok > 0, 'within the limit, events are served');
    // Twice the idle median; idle medians of a few ms are within the timers' resolution, so
    // the bound is never below 10 ms.
    const bound = Math.max(2 * idle.p50, 10);
    assert.ok(during.p50 <= bound,
      `bystander p50 ${during.p50} ms during the flood, idle ${idle.p50} ms (bound ${bound} ms)`);
  } finally {
    flood.kill();
  }
});
