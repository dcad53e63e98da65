// Endurance, the soak harness in one minute (`scripts/bench.sh soak` runs it for 30
// minutes or an hour on release binaries): steady traffic over groups and direct chats,
// devices bouncing and resuming by offset, reads and typing, sampled every 5 s. The
// verdict must be clean; the RSS slopes are printed (a minute says nothing about them).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runEndurance, summary } from './endurance.mjs';

test('soak: one minute of steady traffic, sampled, nothing lost or repeated', { timeout: 300_000 }, async () => {
  const r = await runEndurance('soak', {
    durationSecs: 40, rate: 100, sampleEverySecs: 5, bounceEverySecs: 4, warmupMin: 0.2,
    log: () => {},
  });
  process.stdout.write(`${summary(r)}\n`);
  assert.deepEqual(r.verdict.problems, [], 'the verdict is clean');
  assert.equal(r.counts.accepted, r.counts.sent, 'every message was accepted');
  assert.equal(r.verdict.persisted, r.counts.accepted, 'every accepted message is stored once');
  assert.equal(r.verdict.notLive, 0, 'with no fault, everything arrived over the sockets');
  assert.ok(r.clients.bounces >= 5, `devices bounced (${r.clients.bounces})`);
  assert.equal(r.clients.recovered, r.clients.reconnects, 'every reconnect resumed by offset');
  assert.ok(r.clients.reads > 0 && r.clients.typing > 0, 'devices read and typed');
  assert.equal(r.clients.ackErrors, 0, 'every read and typing event was acknowledged ok');
  assert.ok(r.samples.length >= 8, `sampled every 5 s (${r.samples.length} samples)`);
  const last = r.samples.at(-1);
  for (const name of ['api', 'worker', 'gateway-1', 'gateway-2']) {
    assert.ok(last.procs[name]?.rssMb > 0, `${name} RSS sampled`);
    assert.equal(typeof r.slopesMbPerMin[name], 'number', `${name} slope fitted`);
  }
  assert.ok(last.redisUsedMb > 0 && last.rabbitRssMb > 0 && last.pgConnections > 0, 'services sampled');
  assert.ok(last.pgTablesMb.messages > 0, 'table sizes sampled');
});
