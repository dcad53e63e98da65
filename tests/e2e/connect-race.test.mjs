// No connect window: a socket is routed and its event handlers are registered before
// the client sees `connect`. Thirty times, a recipient connects and, synchronously
// inside its `connect` listener, the other user sends a message over REST and the
// recipient emits `chat.sync` and `chat.read`: the message must arrive live on that
// socket every time and both acks must come back. Every connect also starts with
// `session.recovered` {recovered: false} (no offset asked for).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { assertMessageEvent } from './contract.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import { EV, ackOk, connectAndAct, directPair } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });
const ROUNDS = 30;

d.test(`a message sent inside the connect callback arrives live, ${ROUNDS} times out of ${ROUNDS}`, { timeout: 90_000 }, async (t) => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const failures = [];

  for (let round = 1; round <= ROUNDS; round++) {
    const gateway = round % 2;
    // Every third round starts on long-polling and upgrades, like a browser.
    const transports = round % 3 === 0 ? ['polling', 'websocket'] : ['websocket'];
    const label = `bob#${round}@gw${gateway + 1}/${transports[0]}`;
    const clientMessageId = randomUUID();
    const content = `sent at connect, round ${round}`;

    const { client, hookResult } = await connectAndAct(d, d.gateway(gateway), bob.accessToken, (c) => ({
      // All three leave in this very tick, before the client has seen anything else.
      send: d.sendRaw(alice.accessToken, chat.id, content, clientMessageId),
      sync: c.ack('chat.sync', { chats: { [chat.id]: round - 1 } }),
      read: c.ack('chat.read', { chatId: chat.id, sequence: round - 1 }),
    }), { transports, label });

    const [sendRes, syncAck, readAck] = await Promise.all([hookResult.send, hookResult.sync, hookResult.read]);
    assert.equal(sendRes.status, 202, `${label}: send ${sendRes.status} ${JSON.stringify(sendRes.body)}`);
    assert.equal(syncAck?.status, 'ok', `${label}: chat.sync at connect: ${JSON.stringify(syncAck)}`);
    assert.ok(Array.isArray(syncAck.messages), `${label}: chat.sync messages`);
    // The sync may or may not already see this round's message; never anything older.
    assert.ok(syncAck.messages.every((m) => m.sequence === round), `${label}: chat.sync after ${round - 1}: ${JSON.stringify(syncAck.messages.map((m) => m.sequence))}`);
    assert.equal(readAck?.status, 'ok', `${label}: chat.read at connect: ${JSON.stringify(readAck)}`);

    try {
      await waitFor(() => client.count(EV.NEW, { clientMessageId }) === 1, 5000,
        { message: () => `${label}: message ${round} not received live; events: ${client.events.map((e) => e.event).join(', ')}` });
    } catch (err) {
      // Say whether it was persisted at all (a missed live event, not a lost message).
      const later = await ackOk(client, 'chat.sync', { chats: { [chat.id]: round - 1 } });
      const persisted = later.messages.some((m) => m.clientMessageId === clientMessageId);
      failures.push(`${err.message} (persisted: ${persisted})`);
      client.close();
      continue;
    }
    const [payload] = client.received(EV.NEW, { clientMessageId });
    assertMessageEvent(payload, { chatId: chat.id, senderId: alice.user.id, clientMessageId, content, sequence: round });
    assert.equal(typeof payload.offset, 'string', `${label}: chat.message.new offset`);

    // session.recovered {recovered: false, offset} comes first, before the live event.
    const names = client.events.map((e) => e.event);
    assert.equal(names[0], EV.RECOVERED, `${label}: first event must be ${EV.RECOVERED}, got ${names.join(', ')}`);
    const recovered = client.events[0].payload;
    assert.equal(recovered?.recovered, false, `${label}: ${EV.RECOVERED} ${JSON.stringify(recovered)}`);
    assert.equal(typeof recovered.offset, 'string', `${label}: ${EV.RECOVERED} offset`);
    assert.equal(names.filter((n) => n === EV.RECOVERED).length, 1, `${label}: one ${EV.RECOVERED}`);
    client.close();
  }

  t.diagnostic(`${ROUNDS - failures.length}/${ROUNDS} messages sent at connect arrived live`);
  assert.deepEqual(failures, [], `messages sent inside the connect callback were missed:\n${failures.join('\n')}`);

  // Everything was persisted once, in order, and Bob's read mark followed him.
  const page = await d.history(bob.accessToken, chat.id, { limit: 100 });
  assert.deepEqual(page.messages.map((m) => m.sequence), Array.from({ length: ROUNDS }, (_, i) => i + 1), 'history');
  assert.equal((await d.chatEntry(bob.accessToken, chat.id)).unreadCount, 1, 'bob read up to the previous round each time');
});
