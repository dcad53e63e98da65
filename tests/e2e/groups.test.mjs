// Large groups (issue 27), against the wire contract only, so they hold whatever the
// fan-out underneath: a 300-member group with 20 members online over two gateways
// (WebSocket and long-polling) gets every message once, in per-chat order, with
// increasing offsets per connection; recovery on the other gateway after a disconnect;
// a member added live, a member removed, a blocked sender, typing; CHAT_MAX_MEMBERS.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { assertError } from './contract.mjs';
import { barrier, useDeployment, waitFor } from './harness.mjs';
import {
  assertConnectionGot, connectSpread, makeGroup, messageEvents, transportOf, userPool,
} from './groups-helpers.mjs';
import {
  RECOVERED, assertIncreasing, assertRecovered, compareOffsets, recoverableOf, waitForEvent,
} from './realtime.mjs';
import { EV, ackOk, cursors, entries, expectNone, waitEvent } from './realtime-helpers.mjs';

const LARGE = 300;
const ONLINE = 20;

/** Waits until `client` has `n` message events (new or saved) of `chatId`. */
const hasMessages = (client, chatId, n, timeoutMs = 30_000) => waitFor(
  () => messageEvents(client, chatId).length >= n, timeoutMs,
  { message: () => `${client.label}: ${messageEvents(client, chatId).length}/${n} messages of the group` },
);

/** The `chat.updated` payloads of `client` about `chatId`. */
const updatesOf = (client, chatId) => client.received('chat.updated').filter((p) => p?.chat?.id === chatId);

describe('large groups, two gateways', () => {
  const d = useDeployment({ mode: 'split', gateways: 2 });
  // A registered owner + minted members: the 299 others of the large groups, then 4
  // slices of 30 for the smaller groups (disjoint, so no test sees another's events).
  const pool = d.shared(() => userPool(d, LARGE - 1 + 4 * 30));
  const small = (members, k) => members.slice(LARGE - 1 + 30 * k, LARGE - 1 + 30 * (k + 1));

  d.test('300 members, 20 online over two gateways: 30 messages from 3 senders reach every online member once, in order',
    { timeout: 180_000 }, async () => {
      const { owner, members } = await pool();
      const group = await makeGroup(d, owner, members.slice(0, LARGE - 1), 'three hundred');
      const online = members.slice(0, ONLINE);
      const sockets = await connectSpread(d, online);
      assert.deepEqual(sockets.map((s) => s.transport), online.map((_, i) => transportOf(i)[0]),
        'WebSocket and long-polling connections');

      const senders = online.slice(0, 3);
      const sent = [];
      await Promise.all(senders.map(async (s, k) => {
        for (let i = 0; i < 10; i++) {
          sent.push(await d.send(s.accessToken, group.id, `sender ${k} message ${i}`));
        }
      }));
      assert.equal(sent.length, 30);
      await Promise.all(sockets.map((c) => hasMessages(c, group.id, 30)));
      await barrier(d, sockets); // anything duplicated would have arrived by now
      sockets.forEach((c, i) => assertConnectionGot(c, online[i].user.id, group.id, sent));
      const seqs = messageEvents(sockets[0], group.id).map((e) => e.message.sequence);
      assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => i + 1), 'sequences 1..30');
    });

  d.test('recovery: 10 group messages and a direct one missed, replayed in order on the other gateway; a bogus offset is not recovered',
    { timeout: 180_000 }, async () => {
      const { owner, members } = await pool();
      const group = await makeGroup(d, owner, members.slice(0, LARGE - 1), 'recovery');
      const [mia, control] = members.slice(ONLINE, ONLINE + 2);
      const direct = await d.createDirect(owner.accessToken, mia.user.id);
      const session1 = await d.connect(0, mia.accessToken, { label: 'mia@gw1 (session 1)' });
      const ownerSocket = await d.connect(0, owner.accessToken, { label: 'owner@gw1' });
      const watcher = await d.connect(1, control.accessToken, { label: 'control@gw2', transports: ['polling'] });

      const first = await d.send(owner.accessToken, group.id, 'before the drop');
      await hasMessages(session1, group.id, 1);
      const lastSeen = recoverableOf(session1.events).at(-1).offset;
      session1.close();
      await waitFor(() => !session1.connected, 5000, { message: 'session 1 closed' });

      const missed = [];
      for (let i = 0; i < 10; i++) {
        missed.push(await d.send(owner.accessToken, group.id, `missed ${i}`));
        if (i === 4) missed.push(await d.send(owner.accessToken, direct.id, 'missed direct'));
      }
      await hasMessages(watcher, group.id, 11);
      // Mia's copy of the direct message is published with the owner's `saved`.
      await hasMessages(ownerSocket, direct.id, 1);

      const again = await d.connect(1, mia.accessToken,
        { auth: { offset: lastSeen }, label: 'mia@gw2 (session 2)' });
      const r = await waitForEvent(again, (e) => e.event === RECOVERED, 15_000, RECOVERED);
      assertRecovered(r.payload, true, `offset ${lastSeen}`);
      const index = again.events.indexOf(r);
      const before = again.events.slice(0, index);
      assert.ok(before.every((e) => [EV.NEW, EV.SAVED, EV.STATUS].includes(e.event)),
        `only recoverable events before ${RECOVERED}: ${before.map((e) => e.event).join(', ')}`);
      const replayed = recoverableOf(before, 'replay');
      assertIncreasing(replayed.map((e) => e.offset), 'replay');
      assert.ok(compareOffsets(replayed[0].offset, lastSeen) > 0, 'the replay starts after the offset');
      const news = replayed.filter((e) => e.event === EV.NEW).map((e) => e.payload.message);
      assert.deepEqual(news.map((m) => m.clientMessageId).sort(), missed.map((m) => m.clientMessageId).sort(),
        'exactly the 11 missed messages');
      assert.ok(!news.some((m) => m.clientMessageId === first.clientMessageId), 'nothing seen before is replayed');
      assert.deepEqual(news.filter((m) => m.chatId === group.id).map((m) => m.sequence),
        Array.from({ length: 10 }, (_, i) => i + 2), 'the group\'s messages in sequence order');

      // Live after the recovery, later offsets.
      const live = await d.send(owner.accessToken, group.id, 'after recovery');
      const got = await waitEvent(again, EV.NEW, (p) => p.message?.clientMessageId === live.clientMessageId,
        { timeoutMs: 10_000 });
      assert.ok(again.events.indexOf(got) > index, 'the live message follows session.recovered');
      assert.ok(compareOffsets(got.payload.offset, r.payload.offset) > 0, 'a live offset after session.recovered.offset');

      for (const [what, offset] of [['too old', '1-0'], ['garbage', 'garbage']]) {
        const s = await d.connect(0, mia.accessToken, { auth: { offset }, label: `mia (${what})` });
        const rr = await waitForEvent(s, (e) => e.event === RECOVERED, 10_000, RECOVERED);
        assertRecovered(rr.payload, false, what);
        assert.equal(s.events.indexOf(rr), 0, `${what}: nothing replayed`);
        s.close();
      }
    });

  d.test('a member added while connected gets chat.updated, then every later message live, on both transports',
    { timeout: 120_000 }, async () => {
      const { owner, members } = await pool();
      const [newcomer, ...rest] = small(members, 0);
      const group = await makeGroup(d, owner, rest, 'join live');
      const old = await connectSpread(d, rest.slice(0, 2));
      const mine = await connectSpread(d, [newcomer, newcomer]);
      await d.send(owner.accessToken, group.id, 'before the join');
      await Promise.all(old.map((c) => hasMessages(c, group.id, 1)));

      const since = cursors([...old, ...mine]);
      const res = await d.api('POST', `/chats/${group.id}/participants`,
        { token: owner.accessToken, body: { userIds: [newcomer.user.id] } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const joined = (p) => p.chat?.id === group.id && p.chat.participants.some((x) => x.userId === newcomer.user.id);
      for (const c of [...old, ...mine]) {
        await waitEvent(c, 'chat.updated', joined, { since: since.get(c), timeoutMs: 10_000, what: '(the join)' });
      }
      const later = [];
      for (let i = 0; i < 5; i++) later.push(await d.send(owner.accessToken, group.id, `after the join ${i}`));
      for (const c of mine) {
        await hasMessages(c, group.id, 5);
        const firstUpdate = c.events.findIndex((e) => e.event === 'chat.updated' && joined(e.payload));
        const firstMessage = c.events.findIndex((e) => e.event === EV.NEW && e.payload?.chatId === group.id);
        assert.ok(firstUpdate < firstMessage, `${c.label}: chat.updated before the group's messages`);
      }
      await barrier(d, mine);
      mine.forEach((c) => assertConnectionGot(c, newcomer.user.id, group.id, later));
      assert.deepEqual(mine.map((c) => c.transport), ['websocket', 'polling']);
    });

  d.test('a removed member gets chat.removed and from then on nothing of the group', { timeout: 120_000 }, async () => {
    const { owner, members } = await pool();
    const slice = small(members, 1);
    const [gone, control, ...rest] = slice;
    const group = await makeGroup(d, owner, slice, 'removal');
    const [goneSocket, controlSocket] = await connectSpread(d, [gone, control], { offset: 1 });
    await d.send(owner.accessToken, group.id, 'before the removal');
    await Promise.all([goneSocket, controlSocket].map((c) => hasMessages(c, group.id, 1)));

    const res = await d.api('DELETE', `/chats/${group.id}/participants/${gone.user.id}`, { token: owner.accessToken });
    assert.equal(res.status, 204, JSON.stringify(res.body));
    const removed = await waitEvent(goneSocket, 'chat.removed', (p) => p.chatId === group.id, { timeoutMs: 10_000 });
    await waitFor(() => updatesOf(controlSocket, group.id)
      .some((p) => !p.chat.participants.some((x) => x.userId === gone.user.id)), 10_000,
    { message: 'the others get chat.updated without the removed member' });
    const after = goneSocket.events.indexOf(removed) + 1;

    const later = [];
    for (let i = 0; i < 5; i++) later.push(await d.send(owner.accessToken, group.id, `after the removal ${i}`));
    await ackOk(controlSocket, EV.TYPING, { chatId: group.id, isTyping: true });
    await d.send(rest[0].accessToken, group.id, 'from another member');
    await hasMessages(controlSocket, group.id, 7);
    await barrier(d, [goneSocket]);
    const leaked = goneSocket.events.slice(after)
      .filter((e) => e.payload?.chatId === group.id || e.payload?.chat?.id === group.id);
    assert.deepEqual(leaked.map((e) => e.event), [], 'nothing of the group after chat.removed');
  });

  d.test('a member who blocked the sender gets the group message with blockedSender true, the others not',
    { timeout: 60_000 }, async () => {
      const { owner, members } = await pool();
      const slice = small(members, 2);
      const [sender, blocker, other] = slice;
      const group = await makeGroup(d, owner, slice, 'blocking');
      const block = await d.api('PUT', `/users/${sender.user.id}/block`, { token: blocker.accessToken });
      assert.equal(block.status, 204, JSON.stringify(block.body));
      const [blockerSocket, otherSocket, senderSocket] = await connectSpread(d, [blocker, other, sender]);
      const m = await d.send(sender.accessToken, group.id, 'from the blocked one');
      const byId = (p) => p.message?.clientMessageId === m.clientMessageId;
      const b = await waitEvent(blockerSocket, EV.NEW, byId, { timeoutMs: 10_000 });
      assert.equal(b.payload.message.blockedSender, true, JSON.stringify(b.payload));
      const o = await waitEvent(otherSocket, EV.NEW, byId, { timeoutMs: 10_000 });
      assert.notEqual(o.payload.message.blockedSender, true, JSON.stringify(o.payload));
      const s = await waitEvent(senderSocket, EV.SAVED, byId, { timeoutMs: 10_000 });
      assert.notEqual(s.payload.message.blockedSender, true, 'the sender\'s own copy is plain');
      await barrier(d, [blockerSocket, otherSocket, senderSocket]);
      for (const c of [blockerSocket, otherSocket]) {
        assert.equal(entries(c, EV.NEW, { pred: byId }).length, 1, `${c.label}: once`);
      }
      assert.equal(entries(senderSocket, EV.NEW, { pred: byId }).length, 0, 'the sender gets no .new');
    });

  d.test('typing in a group reaches the other online members on both gateways, never the typist', async () => {
    const { owner, members } = await pool();
    const slice = small(members, 3);
    const group = await makeGroup(d, owner, slice, 'typing');
    const [typist, ...others] = slice.slice(0, 4);
    const typistSockets = await connectSpread(d, [typist, typist]);
    const otherSockets = await connectSpread(d, others);
    const since = cursors([...typistSockets, ...otherSockets]);
    await ackOk(typistSockets[0], EV.TYPING, { chatId: group.id, isTyping: true });
    for (const c of otherSockets) {
      const t = await waitEvent(c, EV.TYPING, (p) => p.chatId === group.id && p.userId === typist.user.id,
        { since: since.get(c), timeoutMs: 10_000 });
      assert.equal(t.payload.isTyping, true);
    }
    await expectNone(d, typistSockets, EV.TYPING, (p) => p.chatId === group.id, { since, what: '(own typing)' });
    for (const c of otherSockets) {
      assert.equal(entries(c, EV.TYPING, { since: since.get(c), pred: (p) => p.chatId === group.id }).length, 1,
        `${c.label}: one chat.typing`);
    }
  });
});

describe('CHAT_MAX_MEMBERS=5', () => {
  const d = useDeployment({ mode: 'split', gateways: 1, env: { CHAT_MAX_MEMBERS: '5' } });

  d.test('a group of 6, or adding past 5, is refused with 422 too_many_members', async () => {
    const users = await d.registerAll('owner', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6');
    const [owner, ...others] = users;
    const six = await d.api('POST', '/chats', {
      token: owner.accessToken,
      body: { type: 'group', title: 'six', participantIds: others.slice(0, 5).map((u) => u.user.id) },
    });
    assertError(six, 422, 'too_many_members');

    const five = await d.createGroup(owner.accessToken, 'five', others.slice(0, 4).map((u) => u.user.id));
    assert.equal(five.participants.length, 5);
    const add = await d.api('POST', `/chats/${five.id}/participants`,
      { token: owner.accessToken, body: { userIds: [others[4].user.id] } });
    assertError(add, 422, 'too_many_members');
    const chat = await d.api('GET', `/chats/${five.id}`, { token: owner.accessToken });
    assert.equal(chat.body.participants.length, 5, 'nobody was added');
  });
});
