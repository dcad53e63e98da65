// Shared flows of the functional tests: exact delivery expectations (`expectDelivery`),
// history checks (`expectHistory`) and the basic direct-chat round trip
// (`directRoundTrip`).

import assert from 'node:assert/strict';

import { EVENTS, assertChat, assertMessage, assertMessageEvent, pickMessage } from './contract.mjs';
import { barrier } from './barrier.mjs';
import { waitFor } from './util.mjs';

/**
 * Waits until the message `sent` ({clientMessageId, content}) was delivered, then
 * until a `barrier` marker reached every socket (a copy published with it, or a
 * delivery to a socket that should not get it, would be in by then), and asserts
 * exact counts:
 *  - every socket in `recipients` got exactly one `chat.message.new` and no `saved`;
 *  - every socket in `senders` (the sender's own sockets) got exactly one
 *    `chat.message.saved` and no `new`;
 *  - every socket in `others` got neither.
 * Each payload must be {chatId, message: Message} with the expected fields, and
 * all copies must be identical. Resolves with the delivered Message.
 */
export async function expectDelivery(d, {
  chatId, senderId, sent, sequence, senders = [], recipients = [], others = [], timeoutMs = 10_000,
}) {
  const filter = { clientMessageId: sent.clientMessageId };
  const missing = () => [
    ...recipients.filter((c) => c.count(EVENTS.NEW, filter) === 0).map((c) => `${c.label}: ${EVENTS.NEW}`),
    ...senders.filter((c) => c.count(EVENTS.SAVED, filter) === 0).map((c) => `${c.label}: ${EVENTS.SAVED}`),
  ];
  await waitFor(() => missing().length === 0, timeoutMs,
    { message: () => `message "${sent.content}" not received by ${missing().join(', ')}` });
  await barrier(d, [...recipients, ...senders, ...others]);

  const expectCounts = (clients, news, saveds) => {
    for (const c of clients) {
      assert.equal(c.count(EVENTS.NEW, filter), news, `${c.label}: number of ${EVENTS.NEW} for "${sent.content}"`);
      assert.equal(c.count(EVENTS.SAVED, filter), saveds, `${c.label}: number of ${EVENTS.SAVED} for "${sent.content}"`);
    }
  };
  expectCounts(recipients, 1, 0);
  expectCounts(senders, 0, 1);
  expectCounts(others, 0, 0);

  const copies = [
    ...recipients.flatMap((c) => c.received(EVENTS.NEW, filter)),
    ...senders.flatMap((c) => c.received(EVENTS.SAVED, filter)),
  ];
  const expected = { chatId, senderId, clientMessageId: sent.clientMessageId, content: sent.content, sequence };
  for (const payload of copies) assertMessageEvent(payload, expected);
  // `offset` is a position in each user's own stream: equal within a user, not across users.
  const withoutOffset = ({ offset, ...rest }) => rest;
  for (const payload of copies.slice(1)) {
    assert.deepEqual(withoutOffset(payload), withoutOffset(copies[0]), 'every socket must receive the same message');
  }
  return copies[0].message;
}

/** Asserts that GET /chats/:chatId/messages (newest page) equals `messages` exactly, oldest first. */
export async function expectHistory(d, token, chatId, messages) {
  const page = await d.history(token, chatId, { limit: 100 });
  for (const m of page.messages) assertMessage(m, { chatId });
  assert.deepEqual(page.messages.map(pickMessage), messages.map(pickMessage),
    'history must hold exactly the delivered messages');
  assert.equal(page.hasMore, false, 'history hasMore');
  return page;
}

/**
 * The basic scenario against a fresh pair of users: A and B each connect one
 * socket (with `transports`), A sends a message over REST in their direct chat,
 * B gets `chat.message.new`, A gets `chat.message.saved` (and no `new`), the
 * history shows it. With a WebSocket-capable transport list the sockets must
 * end up on WebSocket (upgrade); with ['polling'] they must stay on polling.
 * Resolves {a, b, chat, message}.
 */
export async function directRoundTrip(d, { transports = ['websocket'], gateway = 0 } = {}) {
  const [a, b] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(a.accessToken, b.user.id);
  assertChat(chat, { type: 'direct', participantIds: [a.user.id, b.user.id] });

  const aSocket = await d.connect(gateway, a.accessToken, { transports, label: 'alice' });
  const bSocket = await d.connect(gateway, b.accessToken, { transports, label: 'bob' });

  const sent = await d.send(a.accessToken, chat.id, `hello over ${transports.join('+')}`);
  const message = await expectDelivery(d, {
    chatId: chat.id, senderId: a.user.id, sent, sequence: 1, senders: [aSocket], recipients: [bSocket],
  });

  const expectedTransport = transports.includes('websocket') ? 'websocket' : 'polling';
  for (const s of [aSocket, bSocket]) {
    await waitFor(() => s.transport === expectedTransport, 5000,
      { message: () => `${s.label} transport is ${s.transport}, expected ${expectedTransport}` });
    assert.ok(s.connected, `${s.label} still connected`);
  }

  await expectHistory(d, a.accessToken, chat.id, [message]);
  await expectHistory(d, b.accessToken, chat.id, [message]);
  return { a, b, chat, message };
}
