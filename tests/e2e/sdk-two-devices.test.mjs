// SDK end to end (issue 29): two devices of one user. Alice's phone (gateway 1) and
// laptop (gateway 2) are two SDK clients, each with its own storage, and bob is a peer;
// all three send in a direct chat and a group, and alice edits and deletes from one device
// what the other sent. Each device learns of its sibling's sends (`chat.message.saved`),
// keeps only its own sends in its outbox, and every store equals the server's history.

import assert from 'node:assert/strict';

import { createUsers } from './fault-scenario.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  MemoryStorage, assertStoresEqualHistory, connectAll, converse, eventsOf, sdkClient, storeHas,
} from './sdk-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

d.test('two devices of one user and a peer: both devices see every send, stores equal history', { timeout: 90_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob', 'carol']);
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);
  const group = await d.createGroup(acc.alice.accessToken, 'sdk two devices',
    [acc.bob.user.id, acc.carol.user.id]);
  const chats = [dm.id, group.id];

  const phone = sdkClient(d, acc.alice, { label: 'alice-phone', gatewayUrl: d.gateway(0), storage: new MemoryStorage() });
  const laptop = sdkClient(d, acc.alice, { label: 'alice-laptop', gatewayUrl: d.gateway(1), storage: new MemoryStorage() });
  const bob = sdkClient(d, acc.bob, { label: 'bob', gatewayUrl: d.gateway(0) });
  const devices = [phone, laptop];
  await connectAll(t, [phone, laptop, bob]);
  for (const c of devices) assert.equal(c.client.userId, acc.alice.user.id, `${c.label} is alice`);

  await converse(chats.flatMap((chatId) => [phone, laptop, bob].map((client) => ({ client, chatId }))),
    { count: 10, window: 3 });

  // Each device edits and deletes what its sibling sent; bob reacts to both devices.
  const [laptopDm] = laptop.sent.filter((s) => s.chatId === dm.id);
  const [phoneGroup] = phone.sent.filter((s) => s.chatId === group.id);
  const onPhone = await storeHas(phone, dm.id, laptopDm.clientMessageId);
  const onLaptop = await storeHas(laptop, group.id, phoneGroup.clientMessageId);
  await phone.client.edit(dm.id, onPhone.id, 'edited on the phone');
  await laptop.client.deleteMessage(group.id, onLaptop.id);
  const phoneDm = await storeHas(bob, dm.id, phone.sent.find((s) => s.chatId === dm.id).clientMessageId);
  await bob.client.react(dm.id, phoneDm.id, '🎉');
  const last = [phone.send(dm.id, 'phone: last'), laptop.send(group.id, 'laptop: last'), bob.send(dm.id, 'bob: last')];
  await Promise.all([
    waitFor(() => laptop.client.store.messages(dm.id).some((m) => m.id === onPhone.id && m.content === 'edited on the phone'),
      20_000, { message: "the phone's edit reaches the laptop" }),
    waitFor(() => phone.client.store.messages(group.id).some((m) => m.id === onLaptop.id && m.deletedAt),
      20_000, { message: "the laptop's delete reaches the phone" }),
  ]);

  const histories = await assertStoresEqualHistory(d, acc.bob.accessToken, [phone, laptop, bob], chats);
  assert.equal(Object.values(histories).reduce((n, h) => n + h.length, 0), 60 + last.length, 'every send in history');

  // Each device heard of every send of its sibling as chat.message.saved, once.
  for (const [me, sibling] of [[phone, laptop], [laptop, phone]]) {
    const saved = eventsOf(me, 'chat.message.saved').map((e) => e.payload.message.clientMessageId);
    for (const s of sibling.sent) {
      assert.equal(saved.filter((id) => id === s.clientMessageId).length, 1,
        `${me.label}: chat.message.saved of ${sibling.label}'s "${s.content}" once`);
    }
    // Only its own sends are in its outbox.
    const own = new Set(me.sent.map((s) => s.clientMessageId));
    const foreign = [...me.outboxStates.keys()].filter((id) => !own.has(id));
    assert.deepEqual(foreign, [], `${me.label}: outbox entries it never sent`);
  }
  // Bob got alice's sends from both devices as chat.message.new, once each.
  const fromAlice = eventsOf(bob, 'chat.message.new').map((e) => e.payload.message.clientMessageId);
  for (const s of [...phone.sent, ...laptop.sent]) {
    assert.equal(fromAlice.filter((id) => id === s.clientMessageId).length, 1, `bob: "${s.content}" once`);
  }
});
