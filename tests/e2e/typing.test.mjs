// Typing indicators (contract "Typing and presence"): `chat.typing` reaches the other
// participants' sockets on every gateway and never the typist's own sockets; it is
// answered with an ack (an error one for a chat the user is not in); `isTyping: false`
// follows by itself 6 s after the last `true`, when the typist's message is saved and
// when the typist's socket goes; client events are rate limited per socket.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { barrier, sleep, useDeployment, waitFor } from './harness.mjs';
import {
  EV, ackError, ackOk, cursor, cursors, directPair, entries, expectNone, waitEvent,
} from './realtime-helpers.mjs';

const RATE = 5; // RATE_LIMIT_SOCKET_EVENTS: no other test here sends more than 3 events a second on one socket
const d = useDeployment({ mode: 'split', gateways: 2, env: { RATE_LIMIT_SOCKET_EVENTS: String(RATE) } });

const typing = (chatId, isTyping) => ({ chatId, isTyping });
const any = () => true;

/** Asserts a `chat.typing` payload is exactly about `userId` typing (or not) in `chatId`. */
function assertTyping(payload, chatId, userId, isTyping) {
  assert.deepEqual(
    { chatId: payload?.chatId, userId: payload?.userId, isTyping: payload?.isTyping },
    { chatId, userId, isTyping },
    `chat.typing payload ${JSON.stringify(payload)}`);
}

/** Waits for `userId`'s `isTyping` in `chatId` on `client` after `since`; resolves the entry. */
function typingOf(client, chatId, userId, isTyping, since, timeoutMs = 5000) {
  return waitEvent(client, EV.TYPING,
    (p) => p?.chatId === chatId && p?.userId === userId && p?.isTyping === isTyping,
    { since, timeoutMs, what: `${userId} isTyping=${isTyping}` });
}

d.test('typing reaches the other participant on both gateways and is never echoed to the typist', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const carol = await d.register('carol');
  const [a1, a2] = await d.connectSockets(alice, [0, 1]);
  const [b1, b2] = await d.connectSockets(bob, [1, 0]);
  const outsiders = await d.connectSockets(carol, [0, 1]);
  const all = [a1, a2, b1, b2, ...outsiders];

  for (const isTyping of [true, false]) {
    const since = cursors(all);
    await ackOk(a1, EV.TYPING, typing(chat.id, isTyping));
    for (const b of [b1, b2]) {
      const got = await typingOf(b, chat.id, alice.user.id, isTyping, since.get(b));
      assertTyping(got.payload, chat.id, alice.user.id, isTyping);
    }
    // Neither of Alice's sockets (the typist's, and her other device on the other
    // gateway) nor the outsider hears it; each of Bob's sockets hears it once.
    await expectNone(d, [a1, a2, ...outsiders], EV.TYPING, any, { since, what: `(alice isTyping=${isTyping})` });
    for (const b of [b1, b2]) {
      assert.equal(entries(b, EV.TYPING, { since: since.get(b) }).length, 1, `${b.label}: one chat.typing`);
    }
  }

  // The other way round, from Bob's second device.
  const since = cursors(all);
  await ackOk(b2, EV.TYPING, typing(chat.id, true));
  for (const a of [a1, a2]) await typingOf(a, chat.id, bob.user.id, true, since.get(a));
  await expectNone(d, [b1, b2, ...outsiders], EV.TYPING, any, { since, what: '(bob typing)' });
});

d.test('chat.typing in a chat the user is not in, or a malformed one, is answered with an error ack', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const mallory = await d.register('mallory');
  const [aSocket] = await d.connectSockets(alice, [0]);
  const [bSocket] = await d.connectSockets(bob, [1]);
  const [mSocket] = await d.connectSockets(mallory, [1]);
  const since = cursors([aSocket, bSocket]);

  await ackError(mSocket, EV.TYPING, typing(chat.id, true), 'forbidden');
  const unknown = await ackError(mSocket, EV.TYPING, typing(randomUUID(), true));
  assert.ok(['not_found', 'forbidden'].includes(unknown.code), `unknown chat: ${JSON.stringify(unknown)}`);
  await ackError(mSocket, EV.TYPING, { chatId: 'not-a-uuid', isTyping: 'yes' }, 'validation_failed');

  await expectNone(d, [aSocket, bSocket], EV.TYPING, any, { since, what: 'from a refused chat.typing' });
});

d.test('isTyping false follows by itself 6 s after the last true (a refresh restarts the wait)', { timeout: 30_000 }, async (t) => {
  const [alice, bob, dave] = await d.registerAll('alice', 'bob', 'dave');
  const [chat1, chat2] = await Promise.all([
    d.createDirect(alice.accessToken, bob.user.id), d.createDirect(alice.accessToken, dave.user.id)]);
  const [aSocket] = await d.connectSockets(alice, [0]);
  const [bSocket] = await d.connectSockets(bob, [1]);
  const [dSocket] = await d.connectSockets(dave, [1]);
  const sinceB = cursor(bSocket);
  const sinceD = cursor(dSocket);

  // Chat 1: one true. Chat 2: true, and the same again 2 s later (a refresh).
  await ackOk(aSocket, EV.TYPING, typing(chat1.id, true));
  await ackOk(aSocket, EV.TYPING, typing(chat2.id, true));
  const bobTrue = await typingOf(bSocket, chat1.id, alice.user.id, true, sinceB);
  await typingOf(dSocket, chat2.id, alice.user.id, true, sinceD);
  await sleep(2000);
  const refreshedAt = Date.now();
  await ackOk(aSocket, EV.TYPING, typing(chat2.id, true));

  const bobFalse = await typingOf(bSocket, chat1.id, alice.user.id, false, sinceB, 12_000);
  const afterTrue = bobFalse.at - bobTrue.at;
  assert.ok(afterTrue >= 5500, `isTyping false came ${afterTrue} ms after the true: before the 6 s expiry`);
  assert.ok(afterTrue <= 9000, `isTyping false came ${afterTrue} ms after the true: long after the 6 s expiry`);

  const daveFalse = await typingOf(dSocket, chat2.id, alice.user.id, false, sinceD, 12_000);
  const afterRefresh = daveFalse.at - refreshedAt;
  t.diagnostic(`false ${afterTrue} ms after the true; ${afterRefresh} ms after the refresh`);
  assert.ok(afterRefresh >= 5500,
    `isTyping false came ${afterRefresh} ms after the refresh: the first true's expiry was not cancelled by it`);
  assert.ok(afterRefresh <= 9000, `isTyping false came ${afterRefresh} ms after the refresh`);

  // Then exactly one false each, never a second one from an older timer (which would
  // have fired before the refresh's).
  await barrier(d, [bSocket, dSocket]);
  assert.equal(entries(bSocket, EV.TYPING, { since: sinceB, pred: (p) => p?.isTyping === false }).length, 1, 'bob: one false');
  assert.equal(entries(dSocket, EV.TYPING, { since: sinceD, pred: (p) => p?.isTyping === false }).length, 1, 'dave: one false');
});

d.test('isTyping false follows when the typist sends a message', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [aSocket] = await d.connectSockets(alice, [0]);
  const [bSocket] = await d.connectSockets(bob, [1]);
  const since = cursor(bSocket);

  await ackOk(aSocket, EV.TYPING, typing(chat.id, true));
  const started = await typingOf(bSocket, chat.id, alice.user.id, true, since);
  const sent = await d.send(alice.accessToken, chat.id, 'there, I typed it');
  const stopped = await typingOf(bSocket, chat.id, alice.user.id, false, since, 5000);
  assertTyping(stopped.payload, chat.id, alice.user.id, false);
  const after = stopped.at - started.at;
  assert.ok(after < 5000, `isTyping false came ${after} ms after the true: the send did not end typing (the 6 s expiry did)`);
  await waitEvent(bSocket, EV.NEW, (p) => p?.message?.clientMessageId === sent.clientMessageId, { since });

  await barrier(d, [bSocket]);
  assert.equal(entries(bSocket, EV.TYPING, { since, pred: (p) => p?.isTyping === false }).length, 1, 'one false');
});

d.test('isTyping false follows when the typist\'s socket disconnects', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [a1, a2] = await d.connectSockets(alice, [0, 1]);
  const [bSocket] = await d.connectSockets(bob, [1]);
  const since = cursor(bSocket);
  const sinceA2 = cursor(a2);

  await ackOk(a1, EV.TYPING, typing(chat.id, true));
  const started = await typingOf(bSocket, chat.id, alice.user.id, true, since);
  a1.close(); // Alice is still online on her other device
  const stopped = await typingOf(bSocket, chat.id, alice.user.id, false, since, 5000);
  const after = stopped.at - started.at;
  assert.ok(after < 5000, `isTyping false came ${after} ms after the true: the disconnect did not end typing`);
  assert.ok(a2.connected, 'alice\'s other socket stays connected');
  await expectNone(d, [a2], EV.TYPING, any, { since: sinceA2, what: '(her own typing)' });
});

d.test(`client events are rate limited per socket (RATE_LIMIT_SOCKET_EVENTS=${RATE})`, async () => {
  const { a: eve, b: frank, chat } = await directPair(d, ['eve', 'frank']);
  const [fSocket] = await d.connectSockets(frank, [1]);
  const [e2] = await d.connectSockets(eve, [1]);
  const sinceF = cursor(fSocket);
  const [e1] = await d.connectSockets(eve, [0]);
  const connectedAt = Date.now();

  // A burst of 10 within the socket's first second (its budget starts at the handshake).
  const acks = await Promise.all(Array.from({ length: 10 },
    () => e1.ack(EV.TYPING, typing(chat.id, true))));
  const burstMs = Date.now() - connectedAt;
  const ok = acks.filter((a) => a?.status === 'ok').length;
  const limited = acks.filter((a) => a?.status === 'error' && a.code === 'rate_limited');
  assert.equal(ok + limited.length, 10, `every ack is ok or rate_limited: ${JSON.stringify(acks)}`);
  assert.ok(limited.length >= 1, `a burst of 10 with a limit of ${RATE}/s: some acks must be rate_limited: ${JSON.stringify(acks)}`);
  assert.ok(ok >= 1, `the first events of a burst are accepted: ${JSON.stringify(acks)}`);
  if (burstMs < 800) assert.equal(ok, RATE, `within one second exactly ${RATE} events are accepted: ${JSON.stringify(acks)}`);
  for (const a of limited) assert.equal(typeof a.message, 'string', `rate_limited ack message: ${JSON.stringify(a)}`);

  // A refused event has no effect: Frank hears only the accepted ones.
  await waitFor(() => entries(fSocket, EV.TYPING, { since: sinceF }).length >= ok, 5000,
    { message: () => `frank got ${entries(fSocket, EV.TYPING, { since: sinceF }).length}/${ok} chat.typing` });
  // Every ack is in, so every accepted event was published before this marker.
  await barrier(d, [fSocket]);
  assert.equal(entries(fSocket, EV.TYPING, { since: sinceF }).length, ok, 'frank: one chat.typing per accepted event');

  // The limit is per socket: Eve's other socket is not affected.
  await ackOk(e2, EV.TYPING, typing(chat.id, false));
  // And the budget comes back the next second.
  await sleep(Math.max(0, connectedAt + 1100 - Date.now()));
  await ackOk(e1, EV.TYPING, typing(chat.id, false));
});
