// SDK end to end (issue 29): a gateway killed mid-conversation, past the recovery
// retention. With RECOVERY_MAX_EVENTS=10, bob sends more than ten events to alice while her
// gateway is dead (messages, and an edit, a delete and a reaction of messages alice
// already holds), so her offset is trimmed: on the restarted gateway her SDK gets
// `recovered: false` and re-syncs (REST + chat.sync, a 'resync' event). Her store must still
// equal the server's history, the changes to messages she already had included.

import assert from 'node:assert/strict';

import { createUsers } from './fault-scenario.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  assertStoresEqualHistory, connectAll, converse, sdkClient, storeHas,
} from './sdk-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2, env: { RECOVERY_MAX_EVENTS: '10' } });

d.test('gateway kill -9 past the retention: recovered false, the SDK re-syncs, and its store equals history', { timeout: 90_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob', 'carol']);
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);
  const group = await d.createGroup(acc.alice.accessToken, 'sdk recovery miss',
    [acc.bob.user.id, acc.carol.user.id]);
  const chats = [dm.id, group.id];

  const alice = sdkClient(d, acc.alice, { label: 'alice', gatewayUrl: d.gateway(0) });
  const bob = sdkClient(d, acc.bob, { label: 'bob', gatewayUrl: d.gateway(1) });
  await connectAll(t, [alice, bob]);

  await converse([
    { client: alice, chatId: dm.id }, { client: alice, chatId: group.id },
    { client: bob, chatId: dm.id }, { client: bob, chatId: group.id },
  ], { count: 6, window: 3 });
  // Alice holds bob's first messages before her gateway dies.
  const [first, second] = bob.sent.filter((s) => s.chatId === dm.id);
  const toEdit = await storeHas(alice, dm.id, first.clientMessageId);
  const toDelete = await storeHas(alice, dm.id, second.clientMessageId);
  const toReact = await storeHas(bob, group.id, alice.sent.find((s) => s.chatId === group.id).clientMessageId);
  await storeHas(alice, group.id, toReact.clientMessageId);

  const killedAt = Date.now();
  await d.process('gateway-1').kill('SIGKILL');
  await waitFor(() => alice.client.state !== 'connected', 15_000, { message: 'alice notices the dead gateway' });

  // More than RECOVERY_MAX_EVENTS events for alice while she is away.
  await bob.client.edit(dm.id, toEdit.id, 'edited past the retention');
  await bob.client.deleteMessage(dm.id, toDelete.id);
  await bob.client.react(group.id, toReact.id, '🔥');
  await converse([{ client: bob, chatId: dm.id }, { client: bob, chatId: group.id }], { count: 7, window: 3 });
  assert.notEqual(alice.client.state, 'connected', 'alice was away while bob sent');

  await d.restart('gateway-1');
  await waitFor(() => alice.recovered.some((r) => r.at > killedAt), 30_000,
    { message: () => `alice reconnects (${JSON.stringify(alice.recovered)})` });
  const back = alice.recovered.find((r) => r.at > killedAt);
  assert.equal(back.recovered, false, 'past the retention: recovered false');
  await waitFor(() => alice.resyncs.some((at) => at > killedAt), 20_000, { message: "alice's 'resync' event" });

  const histories = await assertStoresEqualHistory(d, acc.bob.accessToken, [alice, bob], chats);
  const dmHistory = histories[dm.id];
  assert.equal(dmHistory.find((m) => m.id === toEdit.id).content, 'edited past the retention');
  assert.ok(dmHistory.find((m) => m.id === toDelete.id).deletedAt, 'the delete is in history');
  assert.equal(dmHistory.length + histories[group.id].length, 24 + 14, 'every send');
  process.stderr.write(`[sdk-recovery-miss] alice back ${back.at - killedAt} ms after the kill (recovered: false), `
    + `store = history (${dmHistory.length + histories[group.id].length} messages)\n`);
});
