// SDK end to end (issue 29): a 503 storm while RabbitMQ restarts. Two SDK clients talk
// through their outboxes on a deployment whose RabbitMQ node is this test's own; the node
// is stopped (stop_app) mid-conversation and kept down until the clients' sends have met
// 503s; alice's app then reloads (a new client on the same outbox storage, which re-sends
// her unsent messages with their ids) before the node starts again. The outboxes retry
// with the same clientMessageId: every send is persisted exactly once, in send order, every
// outbox entry ends sent, and both stores equal the server's history.

import assert from 'node:assert/strict';

import { allReady } from './fault-probes.mjs';
import { createUsers, useFaultDeployment } from './fault-scenario.mjs';
import { waitFor } from './harness.mjs';
import {
  DONE, MemoryStorage, assertStoresEqualHistory, connectAll, converse, reloadable, sdkClient,
} from './sdk-helpers.mjs';

const { d, instance } = useFaultDeployment({ instance: 'rabbitmq', workers: 1, gateways: 1 });

d.test('RabbitMQ restarted mid-conversation: the SDK outbox rides out the 503s, nothing lost or doubled', { timeout: 120_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob', 'carol']);
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);
  const group = await d.createGroup(acc.alice.accessToken, 'sdk 503 storm',
    [acc.bob.user.id, acc.carol.user.id]);
  const chats = [dm.id, group.id];

  const aliceStorage = new MemoryStorage();
  const aliceDevice = reloadable(sdkClient(d, acc.alice, { label: 'alice', storage: aliceStorage }));
  t.after(() => { for (const c of aliceDevice.generations) c.close(); });
  let alice = aliceDevice.current;
  const bob = sdkClient(d, acc.bob, { label: 'bob' });
  await connectAll(t, [alice, bob]);

  // A conversation that goes on until told to stop: before, during and after the outage.
  let stop = false;
  const talk = converse([
    { client: aliceDevice.lane, chatId: dm.id }, { client: aliceDevice.lane, chatId: group.id },
    { client: bob, chatId: dm.id }, { client: bob, chatId: group.id },
  ], { count: 200, window: 4, paceMs: 100, until: () => stop });
  await waitFor(() => alice.sent.length >= 6 && bob.sent.length >= 6, 30_000,
    { message: () => `conversation under way (alice ${alice.sent.length}, bob ${bob.sent.length})` });

  const broker = instance();
  let unsentAtReload = [];
  await broker.down();
  const sentAtDown = alice.sent.length + bob.sent.length;
  try {
    // Down until both outboxes met 503s and hold sends made during the outage.
    await waitFor(() => alice.sendStatuses(503) >= 2 && bob.sendStatuses(503) >= 2
      && alice.unsent() > 0 && bob.unsent() > 0, 30_000, {
      intervalMs: 50,
      message: () => `503s while RabbitMQ is down (alice ${alice.sendStatuses(503)}, bob ${bob.sendStatuses(503)})`,
    });
    // Alice's app reloads while her sends are refused: the next client takes them from storage.
    unsentAtReload = alice.sent.filter((s) => !DONE.has(alice.stateOf(s.clientMessageId))).map((s) => s.clientMessageId);
    alice = await aliceDevice.reload(() => sdkClient(d, acc.alice, { label: 'alice (reloaded)', storage: aliceStorage }));
    const restored = new Set(alice.client.outbox().map((e) => e.clientMessageId));
    assert.ok(unsentAtReload.length > 0 && unsentAtReload.every((id) => restored.has(id)),
      `the reloaded client restored the unsent entries ${unsentAtReload.join(', ')} from storage: ${[...restored].join(', ')}`);
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

  // The reloaded client saw the chats from its start on; it pages back the rest.
  await assertStoresEqualHistory(d, acc.alice.accessToken, [alice, bob], chats, { timeoutMs: 40_000, pageBack: [alice] });

  const status503 = aliceDevice.generations.reduce((n, g) => n + g.sendStatuses(503), 0) + bob.sendStatuses(503);
  assert.ok(status503 > 0, 'no 503 seen');
  assert.ok(sentAtUp > sentAtDown, 'sends were made during the outage');
  assert.ok(alice.sendStatuses(202) > 0, 'the reloaded client re-sent from storage');
  let retriedSame = 0;
  for (const c of [{ label: 'alice', calls: aliceDevice.calls(), sent: alice.sent }, bob]) {
    const posts = c.calls.filter((x) => x.method === 'POST' && /^\/chats\/[^/]+\/messages$/.test(x.path));
    const own = new Set(c.sent.map((s) => s.clientMessageId));
    assert.ok(posts.every((p) => own.has(p.clientMessageId)), `${c.label}: every POST carries one of its outbox ids`);
    // Refused sends were retried with the same id (a 503'd publish may also have been
    // persisted meanwhile: then its chat.message.saved ends the retries; once in history
    // either way, as checked above).
    const refused = new Set(posts.filter((p) => p.status === 503).map((p) => p.clientMessageId));
    retriedSame += [...refused].filter((id) => posts.some((p) => p.clientMessageId === id && p.status === 202)).length;
  }
  assert.ok(retriedSame > 0, 'no send refused with 503 was retried to a 202 with its clientMessageId');
  process.stderr.write(`[sdk-503] ${status503} POSTs answered 503 during the outage (${retriedSame} sends retried to a 202 `
    + `with the same id); ${sentAtUp - sentAtDown} sends `
    + `made while RabbitMQ was down, ${alice.sent.length + bob.sent.length} in all; ${unsentAtReload.length} unsent `
    + `messages carried over alice's reload\n`);
});
