// Fault: poison messages published straight into a busy chat's partition queue mid-stream
// (with amqplib, bypassing the API): a body that is not JSON, a JSON object that is not a
// send command, and a well-formed command with empty content. Each goes to the DLQ at once
// with x-courier-reason = malformed (no retries), and the messages queued behind them in
// that partition are persisted and delivered as usual.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import {
  DEFAULT_DLQ, DEFAULT_EXCHANGE, DEFAULT_QUEUE_PREFIX, partitionOf, setupScenario, useFaultDeployment, withAmqp,
} from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

/** A header value from amqplib as a string (long strings arrive as Buffers). */
const str = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v === undefined ? undefined : String(v));

d.test('poison messages in a partition go to the DLQ as malformed; the messages behind them are delivered', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'poison-message');
  const g1 = s.chats.find((c) => c.title === 'g1');
  const queue = `${DEFAULT_QUEUE_PREFIX}.${partitionOf(g1.id)}`;
  const samePartition = new Set(s.chats.filter((c) => partitionOf(c.id) === partitionOf(g1.id)).map((c) => c.id));
  const poisons = [
    Buffer.from('this is not json {'),
    Buffer.from(JSON.stringify({ hello: 'world', chatId: g1.id })),
    Buffer.from(JSON.stringify({
      brokerMessageId: randomUUID(), chatId: g1.id, senderId: s.accounts.ana.user.id,
      clientMessageId: randomUUID(), content: '', acceptedAt: new Date().toISOString(),
    })),
  ];
  try {
    s.stream();
    await s.acceptedAtLeast(120);
    const issuedBefore = s.ledger.issued;
    await withAmqp(d, async (conn) => {
      const ch = await conn.createConfirmChannel();
      for (const body of poisons) {
        ch.publish(DEFAULT_EXCHANGE, queue, body, {
          persistent: true, contentType: 'application/json', messageId: randomUUID(), mandatory: true,
        });
      }
      await ch.waitForConfirms();
      await ch.close();
    });
    s.mark(`${poisons.length} poison messages confirmed into ${queue}`);
    await s.settle();
    const report = await s.report();

    // Messages sent after the poison into chats of the same partition (i.e. behind it).
    const behind = s.ledger.all.filter((r) => r.index >= issuedBefore && samePartition.has(r.chatId));
    assert.ok(behind.length >= 20, `only ${behind.length} messages were sent behind the poison`);
    s.assertReport(report, { dlq: poisons.length });

    // The DLQ holds exactly the poisons, each marked malformed, not retried.
    const dead = await withAmqp(d, async (conn) => {
      const ch = await conn.createChannel();
      const got = [];
      for (let i = 0; i < poisons.length + 1; i++) {
        const m = await ch.get(DEFAULT_DLQ, { noAck: false });
        if (!m) break;
        got.push({ body: m.content, headers: m.properties.headers ?? {} });
      }
      await ch.close(); // unacked: back to the queue; the vhost goes at teardown
      return got;
    });
    assert.equal(dead.length, poisons.length, `DLQ messages: ${dead.length}`);
    for (const m of dead) {
      const h = m.headers;
      const desc = `DLQ message ${m.body.toString('utf8').slice(0, 80)} headers ${JSON.stringify(Object.fromEntries(Object.entries(h).map(([k, v]) => [k, str(v)])))}`;
      assert.ok(poisons.some((p) => p.equals(m.body)), `${desc}: body is not one of the poisons`);
      assert.equal(str(h['x-courier-reason']), 'malformed', desc);
      if (h['x-courier-source-queue'] !== undefined) assert.equal(str(h['x-courier-source-queue']), queue, desc);
      if (h['x-courier-attempts'] !== undefined) assert.equal(Number(str(h['x-courier-attempts'])), 1, `${desc}: retried before dead-lettering`);
    }
  } finally {
    s.close();
  }
});
