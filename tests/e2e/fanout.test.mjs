// Fan-out across two gateway instances: every socket of every participant gets
// each event exactly once, whichever instance it is connected to.

import { assertChat } from './contract.mjs';
import { expectDelivery, expectHistory, useDeployment } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

d.test('direct chat across two gateway instances', async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);

  // Alice on both instances; Bob on instance 2 and a second device on instance 1;
  // Carol (not in the chat) on both, to catch leaks.
  const aliceSockets = await d.connectSockets(alice, [0, 1]);
  const bobSockets = await d.connectSockets(bob, [1, 0]);
  const outsiders = await d.connectSockets(carol, [0, 1]);

  const fromAlice = await d.send(alice.accessToken, chat.id, 'hi bob, on every device');
  const m1 = await expectDelivery(d, {
    chatId: chat.id, senderId: alice.user.id, sent: fromAlice, sequence: 1,
    senders: aliceSockets, recipients: bobSockets, others: outsiders,
  });

  const fromBob = await d.send(bob.accessToken, chat.id, 'hi alice, from my phone');
  const m2 = await expectDelivery(d, {
    chatId: chat.id, senderId: bob.user.id, sent: fromBob, sequence: 2,
    senders: bobSockets, recipients: aliceSockets, others: outsiders,
  });

  await expectHistory(d, alice.accessToken, chat.id, [m1, m2]);
});

d.test('group of three with a two-socket member', async () => {
  const [alice, bob, carol, dave] = await d.registerAll('alice', 'bob', 'carol', 'dave');
  const group = await d.createGroup(alice.accessToken, 'e2e trio', [bob.user.id, carol.user.id]);
  assertChat(group, {
    type: 'group', title: 'e2e trio', owner: alice.user.id,
    participantIds: [alice.user.id, bob.user.id, carol.user.id],
  });

  const aliceSockets = await d.connectSockets(alice, [0]);
  const bobSockets = await d.connectSockets(bob, [1]);
  const carolSockets = await d.connectSockets(carol, [0, 1]); // two devices, one per instance
  const outsiders = await d.connectSockets(dave, [0, 1]);

  const fromAlice = await d.send(alice.accessToken, group.id, 'hello group');
  const m1 = await expectDelivery(d, {
    chatId: group.id, senderId: alice.user.id, sent: fromAlice, sequence: 1,
    senders: aliceSockets, recipients: [...bobSockets, ...carolSockets], others: outsiders,
  });

  // The two-socket member sends: both of her sockets get `saved` only.
  const fromCarol = await d.send(carol.accessToken, group.id, 'hello from carol');
  const m2 = await expectDelivery(d, {
    chatId: group.id, senderId: carol.user.id, sent: fromCarol, sequence: 2,
    senders: carolSockets, recipients: [...aliceSockets, ...bobSockets], others: outsiders,
  });

  await expectHistory(d, bob.accessToken, group.id, [m1, m2]);
});
