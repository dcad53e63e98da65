// Endurance, the chaos harness in about a minute (`scripts/bench.sh chaos` runs it for
// 30 minutes on release binaries): steady traffic while each fault happens once, every
// 8-10 s: kill -9 of the api, a worker and a gateway (restarted at once, as a supervisor
// would), restarts of Redis, PostgreSQL and RabbitMQ. Devices reconnect with their
// offset, senders retry with the same clientMessageId. Nothing may be lost, stored
// twice, skipped or shown twice; how long each fault kept delivery dark is printed.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runEndurance, summary } from './endurance.mjs';

const KINDS = ['kill api', 'restart redis', 'kill worker', 'restart postgres', 'kill gateway', 'restart rabbitmq'];

test('chaos: every kind of fault once under steady traffic, nothing lost or repeated', { timeout: 420_000 }, async () => {
  const r = await runEndurance('chaos', {
    durationSecs: 70, rate: 100, everySecs: [8, 10], sampleEverySecs: 20, kinds: KINDS,
    log: () => {},
  });
  process.stdout.write(`${summary(r)}\n`);
  assert.deepEqual(r.verdict.problems, [], 'the verdict is clean');
  assert.equal(r.counts.accepted, r.counts.sent, 'every message was accepted in the end (retried)');
  assert.equal(r.verdict.lost, 0);
  assert.ok(r.verdict.persisted >= r.counts.accepted, 'every accepted message is stored');
  assert.deepEqual(new Set(r.verdict.faults.map((f) => f.kind)), new Set(KINDS), 'each kind of fault happened');
  assert.ok(r.clients.reconnects >= 1, 'the gateway kill made devices reconnect');
  assert.ok(r.sends.s503 + r.sends.network > 0, 'the faults were felt by the senders, who retried');
});
