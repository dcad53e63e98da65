// Connection-state recovery (contract "Recovery and offsets"): every recoverable event
// carries an increasing offset; a socket that reconnects with handshake auth.offset gets
// what it missed, in order, before session.recovered {recovered: true} and before any
// live event; an offset past the retention (RECOVERY_MAX_EVENTS, RECOVERY_WINDOW_SECS), an
// unknown one, or none at all gets {recovered: false, offset: <end of the stream>}.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { EVENTS } from './contract.mjs';
import { barrier, sleep, useDeployment, waitFor } from './harness.mjs';
import {
  RECOVERED, TcpProxy, assertIncreasing, assertRecovered, compareOffsets, recoverableOf, waitForEvent,
} from './realtime.mjs';

/** The message events (new or saved) of a list of recoverable events, as messages. */
const messagesOf = (events) => events.filter((e) => e.event === EVENTS.NEW || e.event === EVENTS.SAVED)
  .map((e) => e.payload.message);

/** Waits for a socket's session.recovered and returns {index, payload}. */
async function recoveredOf(client, timeoutMs = 10_000) {
  await waitForEvent(client, (e) => e.event === RECOVERED, timeoutMs, RECOVERED);
  const index = client.events.findIndex((e) => e.event === RECOVERED);
  assert.equal(client.events.filter((e) => e.event === RECOVERED).length, 1, `${client.label}: one ${RECOVERED}`);
  return { index, payload: client.events[index].payload };
}

/**
 * Sends `count` messages from `account` into `chatIdOf(i)`, one after the other, each
 * recorded in `sent` ({chatId, clientMessageId, content}).
 */
async function sendMany(d, account, from, count, chatIdOf, sent, label) {
  for (let i = from; i < from + count; i++) {
    const chatId = chatIdOf(i);
    const m = await d.send(account.accessToken, chatId, `${label} #${i}`);
    sent.push({ chatId, clientMessageId: m.clientMessageId, content: m.content });
  }
}

describe('default retention, two gateways', () => {
  const d = useDeployment({ mode: 'split', gateways: 2 });

  /**
   * The laptop drops mid-burst, by `how`: 'close' (the client disconnects) or 'cut' (its
   * network path through a TcpProxy dies; the gateway learns of it only later).
   */
  const burstAcrossDisconnect = (how) => async () => {
    const proxy = how === 'cut' ? await new TcpProxy(d.gateway(0)).start() : null;
    try {
      await burst(how, proxy);
    } finally {
      proxy?.close();
    }
  };

  async function burst(how, proxy) {
    const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
    const direct = await d.createDirect(alice.accessToken, bob.user.id);
    const group = await d.createGroup(alice.accessToken, 'recovery trio', [bob.user.id, carol.user.id]);

    const aliceSocket = await d.connect(0, alice.accessToken, { label: 'alice@gw1' });
    const carolSocket = await d.connect(1, carol.accessToken, { label: 'carol@gw2' });
    // Bob's phone stays connected the whole time: the reference for what bob's stream holds.
    const phone = await d.connect(1, bob.accessToken, { label: 'bob-phone@gw2' });
    const laptop = await d.connect(proxy?.url ?? 0, bob.accessToken, { label: `bob-laptop@gw1 (session 1, ${how})` });
    for (const s of [aliceSocket, carolSocket, phone, laptop]) {
      const { index, payload } = await recoveredOf(s);
      assert.equal(index, 0, `${s.label}: ${RECOVERED} comes first`);
      assertRecovered(payload, false, `${s.label} fresh connection`);
    }

    const sent = []; // every message that got a 202, in send order per sender
    const aliceChat = (i) => (i % 4 === 0 ? group.id : direct.id);
    // Carol reads the group as its messages arrive: "read" statuses (and her delivered
    // marks, "delivered" statuses) go to bob, who is in the group.
    let carolRead = 0;
    let sendsDone = false;
    const carolGroupMax = () => Math.max(0, ...carolSocket.messages(EVENTS.NEW, { chatId: group.id }).map((m) => m.sequence));
    const carolReader = (async () => {
      while (!sendsDone) {
        await waitFor(() => sendsDone || carolGroupMax() >= carolRead + 5, 60_000, { intervalMs: 10 });
        const max = carolGroupMax();
        if (max > carolRead) {
          const ack = await carolSocket.ack('chat.read', { chatId: group.id, sequence: max });
          assert.equal(ack?.status, 'ok', `carol chat.read ack ${JSON.stringify(ack)}`);
          carolRead = max;
        }
      }
    })();

    // Phase 1 (alice 1..100, bob 1..20 from another device); the laptop drops mid-phase.
    const phase1 = Promise.all([
      sendMany(d, alice, 1, 100, aliceChat, sent, 'alice'),
      sendMany(d, bob, 1, 20, () => direct.id, sent, 'bob'),
    ]);
    await waitFor(() => recoverableOf(laptop.events).length >= 60, 30_000,
      { message: () => `the laptop got ${recoverableOf(laptop.events).length}/60 events` });
    if (how === 'close') {
      laptop.close();
    } else {
      proxy.cut();
      await waitFor(() => !laptop.connected, 10_000, { message: 'the laptop noticed the cut' });
    }
    const session1 = recoverableOf(laptop.events, laptop.label); // all it saw: a disconnected socket emits nothing more
    const closedAt = { logLength: laptop.events.length, phone: recoverableOf(phone.events).length };
    const lastSeen = session1.at(-1).offset;
    await phase1;

    // Phase 2 (alice 101..160, bob 21..30) while the laptop is away.
    await Promise.all([
      sendMany(d, alice, 101, 60, aliceChat, sent, 'alice'),
      sendMany(d, bob, 21, 10, () => direct.id, sent, 'bob'),
    ]);
    await waitFor(() => phone.count(EVENTS.NEW) + phone.count(EVENTS.SAVED) >= 190, 30_000,
      { message: () => `the phone got ${phone.count(EVENTS.NEW) + phone.count(EVENTS.SAVED)}/190 messages` });

    // Phase 3 (alice 161..210, bob 31..40) races the laptop's reconnect, to gateway 2.
    const phase3 = Promise.all([
      sendMany(d, alice, 161, 50, aliceChat, sent, 'alice'),
      sendMany(d, bob, 31, 10, () => direct.id, sent, 'bob'),
    ]);
    const again = await d.connect(1, bob.accessToken, { auth: { offset: lastSeen }, label: 'bob-laptop@gw2 (session 2)' });
    const { index: rIndex, payload: recovered } = await recoveredOf(again);
    assertRecovered(recovered, true, `${again.label} with offset ${lastSeen}`);
    // Phase 4 (alice 211..220): sent after session.recovered, so certainly live.
    await phase3;
    await sendMany(d, alice, 211, 10, aliceChat, sent, 'alice');
    sendsDone = true;
    await carolReader;

    // The final marks: carol read the whole group, alice read the whole direct chat.
    const lastSeq = (chatId) => sent.filter((m) => m.chatId === chatId).length;
    await waitFor(() => carolGroupMax() === lastSeq(group.id), 15_000, { message: 'carol has every group message' });
    assert.equal((await carolSocket.ack('chat.read', { chatId: group.id, sequence: lastSeq(group.id) }))?.status, 'ok');
    await waitFor(() => aliceSocket.count(EVENTS.NEW, { chatId: direct.id }) === 40, 15_000, { message: 'alice has bob\'s 40 messages' });
    assert.equal((await aliceSocket.ack('chat.read', { chatId: direct.id, sequence: lastSeq(direct.id) }))?.status, 'ok');
    const finalRead = (client, userId, chatId) => client.received(EVENTS.STATUS)
      .some((p) => p.status === 'read' && p.userId === userId && p.chatId === chatId && p.sequence === lastSeq(chatId));
    const messageCount = { [phone.label]: () => messagesOf(recoverableOf(phone.events)).length,
      [again.label]: () => messagesOf(session1).length + messagesOf(recoverableOf(again.events)).length };
    for (const c of [again, phone]) {
      await waitFor(() => messageCount[c.label]() >= sent.length
        && finalRead(c, carol.user.id, group.id) && finalRead(c, alice.user.id, direct.id), 30_000,
      { message: () => `${c.label}: not every message and final read status (${messageCount[c.label]()}/${sent.length} messages)` });
    }
    // Late duplicates of anything published so far would be in once the marker is.
    await barrier(d, [again, phone]);

    // --- session 1 and session 2 of the laptop ---
    assert.equal(laptop.events.length, closedAt.logLength, 'nothing reached the laptop\'s first socket after the drop');
    assertIncreasing(session1.map((e) => e.offset), 'session 1');
    const before = again.events.slice(0, rIndex);
    const after = again.events.slice(rIndex + 1);
    assert.ok(before.every((e) => [EVENTS.NEW, EVENTS.SAVED, EVENTS.STATUS].includes(e.event)),
      `only replayed (recoverable) events come before ${RECOVERED}: ${before.map((e) => e.event).join(', ')}`);
    const replayed = recoverableOf(before, 'replay');
    const live = recoverableOf(after, 'live');
    assert.ok(messagesOf(replayed).length >= 70, `phase 2 (70 messages) is replayed, got ${messagesOf(replayed).length} messages`);
    assert.ok(messagesOf(live).length >= 10, `phase 4 (10 messages) arrives live, got ${messagesOf(live).length}`);
    assert.ok(compareOffsets(replayed[0].offset, lastSeen) > 0, `the replay starts after ${lastSeen}, at ${replayed[0].offset}`);
    assert.ok(compareOffsets(recovered.offset, replayed.at(-1).offset) >= 0
      && compareOffsets(recovered.offset, live[0].offset) < 0,
    `${RECOVERED}.offset ${recovered.offset} lies between the last replayed ${replayed.at(-1).offset} and the first live ${live[0].offset}`);
    const session2 = [...replayed, ...live];
    const both = [...session1, ...session2];
    assertIncreasing(both.map((e) => e.offset), 'sessions 1 and 2 together');

    // Every message exactly once, in sequence order per chat, across both sessions.
    const got = messagesOf(both);
    for (const chatId of [direct.id, group.id]) {
      const seqs = got.filter((m) => m.chatId === chatId).map((m) => m.sequence);
      assert.deepEqual(seqs, Array.from({ length: lastSeq(chatId) }, (_, i) => i + 1),
        `${chatId === direct.id ? 'direct' : 'group'} chat: sequences across both sessions`);
    }
    assert.deepEqual(got.map((m) => m.clientMessageId).sort(), sent.map((m) => m.clientMessageId).sort(),
      'exactly the accepted messages');
    const own = got.filter((m) => m.senderId === bob.user.id).length;
    assert.equal(both.filter((e) => e.event === EVENTS.SAVED).length, own, 'bob\'s own messages come as saved');
    assert.equal(own, 40);

    // The same stream as the phone's, which never disconnected.
    await waitFor(() => recoverableOf(phone.events).length === both.length, 5000, { message: () =>
      `phone ${recoverableOf(phone.events).length} vs laptop ${both.length} recoverable events` }).catch(() => {});
    const view = (list) => list.map((e) => `${e.offset} ${e.event}`);
    assert.deepEqual(view(both), view(recoverableOf(phone.events)), 'the laptop (two sessions) and the phone saw the same events');
    process.stdout.write(`recovery burst (${how}): session1=${session1.length} replayed=${replayed.length} live=${live.length} `
      + `statuses=${both.filter((e) => e.event === EVENTS.STATUS).length} phoneAtDrop=${closedAt.phone}\n`);
  }

  d.test('a burst across a disconnect (client closes): replay before session.recovered, live after, every message once and in order',
    { timeout: 120_000 }, burstAcrossDisconnect('close'));
  d.test('a burst across a dropped network path: the same, while the gateway still holds the dead socket',
    { timeout: 120_000 }, burstAcrossDisconnect('cut'));

  d.test('fresh, current, garbage and unknown offsets', async () => {
    const [alice, bob] = await d.registerAll('alice', 'bob');
    const chat = await d.createDirect(alice.accessToken, bob.user.id);
    const phone = await d.connect(0, bob.accessToken, { label: 'bob-phone' });
    for (let i = 1; i <= 3; i++) await d.send(alice.accessToken, chat.id, `m${i}`);
    await waitFor(() => phone.count(EVENTS.NEW) === 3, 10_000, { message: 'phone got 3 messages' });
    const end = recoverableOf(phone.events).at(-1).offset;

    const cases = [
      ['no offset', {}, false],
      ['garbage', { offset: 'garbage' }, false],
      ['empty', { offset: '' }, false],
      ['not a string', { offset: 12345 }, false],
      ['from the future', { offset: `${Date.now() + 3_600_000}-0` }, false],
      ['older than the stream', { offset: '1-0' }, false],
      ['the current end', { offset: end }, true],
    ];
    for (const [what, auth, ok] of cases) {
      const s = await d.connect(1, bob.accessToken, { auth, label: `bob (${what})` });
      const { index, payload } = await recoveredOf(s);
      assertRecovered(payload, ok, what);
      assert.equal(index, 0, `${what}: nothing is replayed before ${RECOVERED}`);
      assert.equal(payload.offset, end, `${what}: ${RECOVERED}.offset is the end of bob's stream`);
      s.close();
    }

    // A socket that got recovered:false still gets live events, after that offset.
    const fresh = await d.connect(1, bob.accessToken, { auth: { offset: 'garbage' }, label: 'bob (after garbage)' });
    await recoveredOf(fresh);
    await d.send(alice.accessToken, chat.id, 'm4');
    const m4 = await waitForEvent(fresh, (e) => e.event === EVENTS.NEW, 10_000, 'm4');
    assert.equal(m4.payload.message.sequence, 4);
    assert.ok(compareOffsets(m4.payload.offset, end) > 0, 'a live event after recovered:false has a later offset');
    assert.equal(fresh.count(EVENTS.NEW), 1, 'm1..m3 are not replayed to a socket that got recovered:false');

    // A user with no events at all: recovered:false with an offset.
    const loner = await d.register('loner');
    const s = await d.connect(0, loner.accessToken, { auth: { offset: end }, label: 'loner' });
    const { payload } = await recoveredOf(s);
    assertRecovered(payload, false, 'another user\'s offset, own stream empty');
  });
});

describe('RECOVERY_MAX_EVENTS=10', () => {
  const d = useDeployment({ mode: 'split', gateways: 1, env: { RECOVERY_MAX_EVENTS: '10' } });

  d.test('within the cap the gap is replayed; 50 events later the old offset gets recovered:false', async () => {
    const [alice, bob] = await d.registerAll('alice', 'bob');
    const chat = await d.createDirect(alice.accessToken, bob.user.id);
    const aliceSocket = await d.connect(0, alice.accessToken, { label: 'alice' });
    const persisted = (n) => waitFor(() => aliceSocket.count(EVENTS.SAVED) >= n, 15_000,
      { message: () => `alice has ${aliceSocket.count(EVENTS.SAVED)}/${n} saved` });

    let bob1 = await d.connect(0, bob.accessToken, { label: 'bob session 1' });
    await d.send(alice.accessToken, chat.id, 'm1');
    const first = await waitForEvent(bob1, (e) => e.event === EVENTS.NEW, 10_000, 'm1');
    bob1.close();
    for (let i = 2; i <= 6; i++) await d.send(alice.accessToken, chat.id, `m${i}`);
    await persisted(6);

    // 5 missed events (< 10): replayed.
    bob1 = await d.connect(0, bob.accessToken, { auth: { offset: first.payload.offset }, label: 'bob session 2' });
    const { index, payload } = await recoveredOf(bob1);
    assertRecovered(payload, true, '5 events behind, cap 10');
    const replay = recoverableOf(bob1.events.slice(0, index));
    assert.deepEqual(messagesOf(replay).map((m) => m.sequence), [2, 3, 4, 5, 6], 'the 5 missed messages');
    const held = replay.at(-1).offset;
    bob1.close();

    // 50 missed events (> 10): the offset is past the retention.
    for (let i = 7; i <= 56; i++) await d.send(alice.accessToken, chat.id, `m${i}`);
    await persisted(56);
    const bob3 = await d.connect(0, bob.accessToken, { auth: { offset: held }, label: 'bob session 3' });
    const r3 = await recoveredOf(bob3);
    assertRecovered(r3.payload, false, '50 events behind, cap 10');
    assert.equal(r3.index, 0, 'nothing replayed when the offset is past the retention');
    assert.ok(compareOffsets(r3.payload.offset, held) > 0, `${RECOVERED}.offset is the stream's end, past ${held}`);

    // The client reloads with chat.sync, then gets live events.
    const ack = await bob3.ack('chat.sync', { chats: { [chat.id]: 6 } });
    assert.equal(ack?.status, 'ok');
    assert.deepEqual(ack.messages.map((m) => m.sequence), Array.from({ length: 50 }, (_, i) => i + 7));
    await d.send(alice.accessToken, chat.id, 'm57');
    const live = await waitForEvent(bob3, (e) => e.event === EVENTS.NEW, 10_000, 'm57');
    assert.equal(live.payload.message.sequence, 57);
    assert.ok(compareOffsets(live.payload.offset, r3.payload.offset) > 0);
  });
});

describe('RECOVERY_WINDOW_SECS=3 (all-in-one)', () => {
  const d = useDeployment({ mode: 'all-in-one', env: { RECOVERY_WINDOW_SECS: '3' } });

  d.test('an offset older than the window gets recovered:false', async () => {
    const [alice, bob] = await d.registerAll('alice', 'bob');
    const chat = await d.createDirect(alice.accessToken, bob.user.id);
    const aliceSocket = await d.connect(0, alice.accessToken, { label: 'alice' });
    // Bob's stream is written in the same step as alice's saved event.
    const published = (n) => waitFor(() => aliceSocket.count(EVENTS.SAVED) >= n, 10_000, { message: `alice saved ${n}` });
    const bob1 = await d.connect(0, bob.accessToken, { label: 'bob session 1' });
    await d.send(alice.accessToken, chat.id, 'm1');
    const first = await waitForEvent(bob1, (e) => e.event === EVENTS.NEW, 10_000, 'm1');
    bob1.close();
    await sleep(3500); // the retention window itself is under test: let it pass
    await d.send(alice.accessToken, chat.id, 'm2');
    await published(2);
    const bob2 = await d.connect(0, bob.accessToken, { auth: { offset: first.payload.offset }, label: 'bob session 2' });
    const r = await recoveredOf(bob2);
    assertRecovered(r.payload, false, 'an offset 3.5 s old, window 3 s');
    assert.equal(r.index, 0, 'nothing replayed');
    bob2.close();

    // Within the window: recovered.
    await d.send(alice.accessToken, chat.id, 'm3');
    await published(3);
    const bob3 = await d.connect(0, bob.accessToken, { auth: { offset: r.payload.offset }, label: 'bob session 3' });
    const r3 = await recoveredOf(bob3);
    assertRecovered(r3.payload, true, 'an offset of a moment ago');
    assert.deepEqual(messagesOf(recoverableOf(bob3.events.slice(0, r3.index))).map((m) => m.sequence), [3]);
  });
});
