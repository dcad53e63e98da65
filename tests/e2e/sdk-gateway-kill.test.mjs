// SDK end to end (issue 29): a gateway killed mid-conversation. Two SDK clients (alice
// on gateway 1, bob on gateway 2) exchange messages continuously through their outboxes in
// a direct chat and a group; gateway 1 gets `kill -9` while bob keeps sending, editing,
// deleting and reacting; it restarts on the same port. Alice's SDK reconnects by itself
// and resumes by offset (a `recovered` event with `recovered: true`), and both stores end
// equal to the server's history: no duplicate, no hole, every send once and sent.

import assert from 'node:assert/strict';

import { createUsers } from './fault-scenario.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  assertStoresEqualHistory, connectAll, converse, eventsOf, sdkClient, storeHas,
} from './sdk-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

d.test('gateway kill -9 mid-conversation: the SDK reconnects, recovers by offset, and its store equals history', { timeout: 90_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob', 'carol']);
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);
  const group = await d.createGroup(acc.alice.accessToken, 'sdk gateway kill',
    [acc.bob.user.id, acc.carol.user.id]);
  const chats = [dm.id, group.id];

  const alice = sdkClient(d, acc.alice, { label: 'alice', gatewayUrl: d.gateway(0) });
  const bob = sdkClient(d, acc.bob, { label: 'bob', gatewayUrl: d.gateway(1) });
  await connectAll(t, [alice, bob]);

  const talk = converse([
    { client: alice, chatId: dm.id }, { client: alice, chatId: group.id },
    { client: bob, chatId: dm.id }, { client: bob, chatId: group.id },
  ], { count: 20, window: 3 });

  // Mid-conversation: once both have messages saved on both sides.
  await waitFor(() => alice.sent.length >= 12 && bob.sent.length >= 12
    && alice.client.store.messages(dm.id).filter((m) => m.senderId === acc.bob.user.id).length >= 4,
  30_000, { message: () => `conversation under way (alice ${alice.sent.length}, bob ${bob.sent.length})` });

  const killedAt = Date.now();
  const exit = await d.process('gateway-1').kill('SIGKILL');
  assert.equal(exit?.signal, 'SIGKILL', 'gateway 1 killed');
  await waitFor(() => alice.client.state !== 'connected', 15_000, { message: 'alice notices the dead gateway' });

  // While alice is away: bob goes on sending, edits, deletes and reacts.
  const bobBefore = bob.sent.length;
  const [first, second] = bob.sent.filter((s) => s.chatId === dm.id);
  const toEdit = await storeHas(bob, dm.id, first.clientMessageId);
  const toDelete = await storeHas(bob, dm.id, second.clientMessageId);
  const aliceFirst = await storeHas(bob, group.id, alice.sent.find((s) => s.chatId === group.id).clientMessageId);
  await bob.client.edit(dm.id, toEdit.id, 'edited while alice was away');
  await bob.client.deleteMessage(dm.id, toDelete.id);
  await bob.client.react(group.id, aliceFirst.id, '👍');
  await waitFor(() => bob.sent.length >= Math.min(bobBefore + 8, 40), 30_000,
    { message: () => `bob sends while alice is away (${bob.sent.length - bobBefore})` });
  assert.notEqual(alice.client.state, 'connected', 'alice was away while bob sent');

  await d.restart('gateway-1');
  await talk;

  // Alice reconnected on her own and resumed by offset.
  await waitFor(() => alice.recovered.some((r) => r.at > killedAt && r.recovered === true), 30_000,
    { message: () => `alice: a 'recovered' event with recovered: true after the kill (${JSON.stringify(alice.recovered)})` });
  assert.ok(alice.states.some((s) => s.at > killedAt && s.state === 'connecting'), 'alice went connecting');
  assert.equal(alice.client.state, 'connected');
  assert.equal(bob.client.state, 'connected');
  assert.ok(!bob.recovered.some((r) => r.at > killedAt), 'bob never lost his gateway');

  const histories = await assertStoresEqualHistory(d, acc.alice.accessToken, [alice, bob], chats);
  // The changes made while alice was away are in history, hence in her store.
  const dmHistory = histories[dm.id];
  assert.equal(dmHistory.find((m) => m.id === toEdit.id).content, 'edited while alice was away');
  assert.ok(dmHistory.find((m) => m.id === toDelete.id).deletedAt, 'the delete is in history');
  assert.ok(eventsOf(alice, 'chat.message.updated', killedAt).length >= 1, 'alice got the edit after the kill');
  assert.equal(dmHistory.length + histories[group.id].length, 80, 'every send of the conversation');
  const back = alice.recovered.find((r) => r.at > killedAt);
  process.stderr.write(`[sdk-gateway-kill] bob sent ${bob.sent.length - bobBefore} while alice was away; `
    + `alice back ${back.at - killedAt} ms after the kill (recovered: ${back.recovered}); 80 messages\n`);
});
