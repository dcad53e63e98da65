// Abuse: an event flood. A user floods the gateway with `chat.typing` and `chat.sync`
// from several sockets at 5 times the per-socket limit: the flood's acks are
// `rate_limited`, what is within the limit is served, and a bystander's messages keep
// arriving. The bystander's delivery latency (REST send → `chat.message.new` on another
// user's socket) is measured idle (before and after) and during the flood and printed:
// a figure, not an assertion (speed is judged by benchmarks: `scripts/bench.sh flood`,
// flood-bench.mjs). The flood runs in a child process (flood.mjs).

import assert from 'node:assert/strict';

import { latency as measure, startFlood } from './flood.mjs';
import { useDeployment } from './harness.mjs';
import { directPair } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split' });

const SAMPLES = 31;
const SOCKETS = 5;
const LIMIT = 20; // RATE_LIMIT_SOCKET_EVENTS, per socket per second (the default)
const FLOOD_RATE = 500; // events per second over 5 sockets: 5 times the limit
const FLOOD_MS = 3000; // the flood lasts at least this long, so the limit outweighs the first second's budget

d.test('an event flood is rate limited while a bystander keeps receiving', { timeout: 120_000 }, async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [mallory, victim] = await d.registerAll('mallory', 'victim');
  const target = await d.createDirect(mallory.accessToken, victim.user.id);
  const listener = await d.connect(0, bob.accessToken, { label: 'bob' });
  const pair = { sender: alice, chat, listener };
  const latency = (label) => measure(d, pair, label, SAMPLES);
  await latency('warm-up');
  const before = await latency('idle');

  const flood = await startFlood(d.gateway(0), mallory.accessToken, target.id, SOCKETS, FLOOD_RATE);
  try {
    const during = await latency('flood');
    const counts = await flood.stop(FLOOD_MS);
    // The idle value is measured on both sides of the flood (the box's own drift).
    const after = await latency('idle again');
    const idle = { p50: (before.p50 + after.p50) / 2, p90: (before.p90 + after.p90) / 2 };
    console.log(`# bystander delivery latency, ms: idle p50 ${idle.p50} p90 ${idle.p90}; `
      + `during the flood p50 ${during.p50} p90 ${during.p90}; flood acks ${JSON.stringify(counts)}`);
    // Each socket's budget is 20 events in a one-second window opened by its first event:
    // over `ms` a socket spans at most ceil(ms / 1000) + 1 windows. What is over that is refused.
    const allowed = SOCKETS * LIMIT * (Math.ceil(counts.ms / 1000) + 1);
    assert.ok(counts.ok <= allowed, `no more than the limit is served (${allowed}): ${JSON.stringify(counts)}`);
    assert.ok(counts.limited > 0 && counts.limited >= counts.sent - allowed,
      `the flood beyond the limit is refused: ${JSON.stringify(counts)}`);
    assert.ok(counts.ok > 0, 'within the limit, events are served');
    assert.equal(counts.other, 0, 'every flooded event got an ack: ok or rate_limited');
    assert.equal(counts.ok + counts.limited, counts.sent, `every flooded event got its ack: ${JSON.stringify(counts)}`);
  } finally {
    flood.kill();
  }
});
