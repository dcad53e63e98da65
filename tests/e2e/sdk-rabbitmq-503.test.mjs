// SDK end to end (issue 29): a 503 storm while RabbitMQ restarts. Two SDK clients talk
// through their outboxes on a deployment whose RabbitMQ node is this test's own; the node
// is stopped (stop_app) mid-conversation and kept down until the clients' sends have met
// 503s, then started again. The outboxes retry with the same clientMessageId: every send
// is persisted exactly once, in send order, every outbox entry ends sent, and both stores
// equal the server's history.

import assert from 'node:assert/strict';

import { allReady } from './fault-probes.mjs';
import { createUsers, useFaultDeployment } from './fault-scenario.mjs';
import { waitFor } from './harness.mjs';
import {
  assertStoresEqualHistory, connectAll, converse, sdkClient,
} from './sdk-helpers.mjs';

const { d, instance } = useFaultDeployment({ instance: 'rabbitmq', workers: 1, gateways: 1 });

d.test('RabbitMQ restarted mid-conversation: the SDK outbox rides out the 503s, nothing lost or doubled', { timeout: 120_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob', 'carol']);
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);
  const group = await d.createGroup(acc.alice.accessToken, 'sdk 503 storm',
    [acc.bob.user.id, acc.carol.user.id]);
  const chats = [dm.id, group.id];

  const alice = sdkClient(d, acc.alice, { label: 'alice' });
  const bob = sdkClient(d, acc.bob, { label: 'bob' });
  const clients = [alice, bob];
  await connectAll(t, clients);

  // A conversation that goes on until told to stop: before, during and after the outage.
  let stop = false;
  const talk = converse([
    { client: alice, chatId: dm.id }, { client: alice, chatId: group.id },
    { client: bob, chatId: dm.id }, { client: bob, chatId: group.id },
  ], { count: 200, window: 4, paceMs: 100, until: () => stop });
  await waitFor(() => alice.sent.length >= 6 && bob.sent.length >= 6, 30_000,
    { message: () => `conversation under way (alice ${alice.sent.length}, bob ${bob.sent.length})` });

  const broker = instance();
  await broker.down();
  const sentAtDown = alice.sent.length + bob.sent.length;
  try {
    // Down until both outboxes met 503s and hold sends made during the outage.
    await waitFor(() => alice.sendStatuses(503) >= 2 && bob.sendStatuses(503) >= 2
      && alice.unsent() > 0 && bob.unsent() > 0, 30_000, {
      intervalMs: 50,
      message: () => `503s while RabbitMQ is down (alice ${alice.sendStatuses(503)}, bob ${bob.sendStatuses(503)})`,
    });
  } finally {
    await broker.up();
  }
  await allReady(d);
  const sentAtUp = alice.sent.length + bob.sent.length;
  // The conversation goes on after the broker is back, then ends.
  await waitFor(() => alice.sent.length + bob.sent.length >= sentAtUp + 12, 30_000,
    { message: () => `sends after the outage (${alice.sent.length + bob.sent.length - sentAtUp})` });
  stop = true;
  await talk;

  await assertStoresEqualHistory(d, acc.alice.accessToken, clients, chats, { timeoutMs: 40_000 });

  const status503 = alice.sendStatuses(503) + bob.sendStatuses(503);
  assert.ok(status503 > 0, 'no 503 seen');
  assert.ok(sentAtUp > sentAtDown, 'sends were made during the outage');
  for (const c of clients) {
    const posts = c.calls.filter((x) => x.method === 'POST' && /^\/chats\/[^/]+\/messages$/.test(x.path));
    const own = new Set(c.sent.map((s) => s.clientMessageId));
    assert.ok(posts.every((p) => own.has(p.clientMessageId)), `${c.label}: every POST carries one of its outbox ids`);
    // Each refused send was retried with the same id until accepted.
    for (const refused of posts.filter((p) => p.status === 503)) {
      assert.ok(posts.some((p) => p.clientMessageId === refused.clientMessageId && p.status === 202 && p.at > refused.at),
        `${c.label}: ${refused.clientMessageId} got a 503 and was never retried to a 202 with the same id`);
    }
    const accepted = posts.filter((p) => p.status === 202).map((p) => p.clientMessageId);
    assert.equal(new Set(accepted).size, c.sent.length, `${c.label}: every send accepted (with its own id)`);
  }
  process.stderr.write(`[sdk-503] ${status503} POSTs answered 503 during the outage; ${sentAtUp - sentAtDown} sends `
    + `made while RabbitMQ was down, ${alice.sent.length + bob.sent.length} in all\n`);
});
