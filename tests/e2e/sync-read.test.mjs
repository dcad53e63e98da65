// Client -> server events: chat.sync (catch up after being offline) and
// chat.read (read mark, unread counts, read receipts to the other side).

import assert from 'node:assert/strict';

import { EVENTS, assertMessage, pickMessage } from './contract.mjs';
import { useDeployment, waitFor } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 1 });

/**
 * Alice (connected) sends `count` messages to Bob (not connected) and waits
 * for her `saved` confirmations, i.e. until they are persisted. Resolves
 * {alice, bob, chat, aliceSocket, persisted: [Message by sequence]}.
 */
async function messagesWhileBobIsAway(count) {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const [aliceSocket] = await d.connectSockets(alice, [0]);
  for (let i = 1; i <= count; i++) await d.send(alice.accessToken, chat.id, `while you were away ${i}`);
  await waitFor(() => aliceSocket.count(EVENTS.SAVED, { chatId: chat.id }) === count, 10_000,
    { message: () => `alice has ${aliceSocket.count(EVENTS.SAVED, { chatId: chat.id })}/${count} saved` });
  const persisted = aliceSocket.messages(EVENTS.SAVED, { chatId: chat.id })
    .sort((x, y) => x.sequence - y.sequence);
  return { alice, bob, chat, aliceSocket, persisted };
}

/** Emits `event` with an ack and asserts {status: "ok"}; resolves the ack. */
async function ackOk(client, event, payload) {
  const ack = await client.ack(event, payload);
  assert.equal(ack?.status, 'ok', `${event} ${JSON.stringify(payload)} ack: ${JSON.stringify(ack)}`);
  return ack;
}

/** chat.sync from `lastSeen` in `chatId`; asserts the ack's shape and resolves its messages. */
async function sync(client, chatId, lastSeen) {
  const ack = await ackOk(client, 'chat.sync', { chats: { [chatId]: lastSeen } });
  assert.ok(Array.isArray(ack.messages), `chat.sync ack messages: ${JSON.stringify(ack)}`);
  if ('hasMore' in ack) assert.equal(ack.hasMore, false, 'chat.sync hasMore for a short backlog');
  for (const m of ack.messages) assertMessage(m, { chatId });
  return ack.messages;
}

d.test('chat.sync returns what was persisted while away; chat.read clears the unread count', async () => {
  const { alice, bob, chat, persisted } = await messagesWhileBobIsAway(3);

  let bobsEntry = await d.chatEntry(bob.accessToken, chat.id);
  assert.equal(bobsEntry.unreadCount, 3, 'bob: unread before reading');
  assert.equal(bobsEntry.lastSequence, 3, 'lastSequence');
  assert.equal((await d.chatEntry(alice.accessToken, chat.id)).unreadCount, 0, 'alice: own messages are not unread');

  const [bobSocket] = await d.connectSockets(bob, [0]);
  const all = await sync(bobSocket, chat.id, 0);
  assert.deepEqual(all.map(pickMessage), persisted.map(pickMessage), 'chat.sync from 0: everything, oldest first');
  assert.deepEqual((await sync(bobSocket, chat.id, 2)).map(pickMessage), persisted.slice(2).map(pickMessage),
    'chat.sync from 2: only sequence 3');
  assert.deepEqual(await sync(bobSocket, chat.id, 3), [], 'chat.sync when up to date: nothing');

  await ackOk(bobSocket, 'chat.read', { chatId: chat.id, sequence: 3 });
  bobsEntry = await d.chatEntry(bob.accessToken, chat.id);
  assert.equal(bobsEntry.unreadCount, 0, 'bob: unread after chat.read');

  // The read mark never moves backwards (whatever the ack says about it).
  await bobSocket.ack('chat.read', { chatId: chat.id, sequence: 1 });
  assert.equal((await d.chatEntry(bob.accessToken, chat.id)).unreadCount, 0, 'unread after reading backwards');
});

d.test('chat.read is reported to the other participant as chat.message.status "read"', async () => {
  const { bob, chat, aliceSocket } = await messagesWhileBobIsAway(2);
  const [bobSocket] = await d.connectSockets(bob, [0]);

  await ackOk(bobSocket, 'chat.read', { chatId: chat.id, sequence: 2 });
  const isReceipt = (p) => p?.chatId === chat.id && p?.status === 'read';
  const receipt = await waitFor(() => aliceSocket.received(EVENTS.STATUS).find(isReceipt), 5000,
    { message: `alice got no ${EVENTS.STATUS} "read"` });
  assert.deepEqual(
    { chatId: receipt.chatId, userId: receipt.userId, status: receipt.status, sequence: receipt.sequence },
    { chatId: chat.id, userId: bob.user.id, status: 'read', sequence: 2 });
});

d.test('chat.read on a chat the user is not in is answered with an error ack', async () => {
  const { chat } = await messagesWhileBobIsAway(1);
  const outsider = await d.register('mallory');
  const [socket] = await d.connectSockets(outsider, [0]);

  const ack = await socket.ack('chat.read', { chatId: chat.id, sequence: 1 });
  assert.equal(ack?.status, 'error', `ack: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.code, 'string', 'error ack code');
  assert.equal(typeof ack.message, 'string', 'error ack message');
});
