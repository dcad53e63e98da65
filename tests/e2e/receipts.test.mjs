// Receipts (contract "Receipts"): delivered marks advance when a chat.message.new reaches
// a live socket, read marks with chat.read / POST /chats/:chatId/read; the other
// participants get chat.message.status (with an offset, coalesced per 250 ms); a
// message's status (the sender's view), deliveredCount and readCount in history; the
// marks in GET /chats/:chatId.

import assert from 'node:assert/strict';

import { barrier, useDeployment, waitFor } from './harness.mjs';
import {
  EV, ackOk, assertStatusEvent, chatWithMarks, cursor, directPair, entries, expectNone, markOf, receiptView,
  waitEvent,
} from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 }); // RECEIPT_FLUSH_MS: the default 250

const byCmid = (sent) => (p) => p?.message?.clientMessageId === sent.clientMessageId;
const statusFrom = (userId, status, sequence) => (p) => p?.userId === userId && p?.status === status
  && (sequence === undefined || p?.sequence === sequence);
const view = (status, deliveredCount, readCount) => ({ status, deliveredCount, readCount });

/** Waits for `chat.message.status` {userId, status, sequence} on `client` after `since`. */
async function statusEvent(client, chatId, userId, status, sequence, since = 0) {
  const got = await waitEvent(client, EV.STATUS, statusFrom(userId, status, sequence),
    { since, timeoutMs: 5000, what: `${status} ${sequence} from ${userId}` });
  assertStatusEvent(got.payload, { chatId, userId, status, sequence });
  return got;
}

d.test('direct chat: sent, then delivered when it reaches the recipient\'s socket, then read', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [aSocket] = await d.connectSockets(alice, [0]);

  // Bob is not connected: the message stays "sent".
  const m1 = await d.send(alice.accessToken, chat.id, 'first, while you are away');
  await waitEvent(aSocket, EV.SAVED, byCmid(m1));
  assert.deepEqual((await receiptView(d, alice.accessToken, chat.id))[1], view('sent', 0, 0), 'm1 before bob connects');
  assert.deepEqual(markOf(await chatWithMarks(d, alice.accessToken, chat.id), bob.user.id),
    { userId: bob.user.id, deliveredSequence: 0, readSequence: 0 }, 'bob\'s marks before he connects');

  // Bob connects on the other gateway; the next message reaches his socket: delivered up to 2.
  const [bSocket] = await d.connectSockets(bob, [1]);
  const since = cursor(aSocket);
  const m2 = await d.send(alice.accessToken, chat.id, 'second, now that you are here');
  const got = await waitEvent(bSocket, EV.NEW, byCmid(m2));
  assert.equal(typeof got.payload.offset, 'string', `chat.message.new carries an offset: ${JSON.stringify(got.payload)}`);
  const delivered = await statusEvent(aSocket, chat.id, bob.user.id, 'delivered', 2, since);
  assert.deepEqual(await receiptView(d, alice.accessToken, chat.id),
    { 1: view('delivered', 1, 0), 2: view('delivered', 1, 0) }, 'history after delivery');
  assert.deepEqual(markOf(await chatWithMarks(d, alice.accessToken, chat.id), bob.user.id),
    { userId: bob.user.id, deliveredSequence: 2, readSequence: 0 }, 'bob\'s marks after delivery');

  // Bob reads up to 1, then up to 2.
  await ackOk(bSocket, 'chat.read', { chatId: chat.id, sequence: 1 });
  const read1 = await statusEvent(aSocket, chat.id, bob.user.id, 'read', 1, since);
  assert.deepEqual(await receiptView(d, alice.accessToken, chat.id),
    { 1: view('read', 1, 1), 2: view('delivered', 1, 0) }, 'history after reading 1');
  await ackOk(bSocket, 'chat.read', { chatId: chat.id, sequence: 2 });
  const read2 = await statusEvent(aSocket, chat.id, bob.user.id, 'read', 2, since);
  assert.deepEqual(await receiptView(d, alice.accessToken, chat.id),
    { 1: view('read', 1, 1), 2: view('read', 1, 1) }, 'history after reading 2');
  const chatBody = await chatWithMarks(d, bob.accessToken, chat.id);
  assert.deepEqual(markOf(chatBody, bob.user.id), { userId: bob.user.id, deliveredSequence: 2, readSequence: 2 },
    'bob\'s marks after reading');
  assert.deepEqual(chatBody.marks.map((m) => m.userId).sort(), [alice.user.id, bob.user.id].sort(),
    'one mark per participant');

  // In order, with increasing offsets; never to the reader himself.
  const statuses = entries(aSocket, EV.STATUS, { since });
  assert.deepEqual(statuses.map((e) => e.payload), [delivered, read1, read2].map((e) => e.payload),
    'alice: delivered 2, read 1, read 2 and nothing else');
  const offsets = statuses.map((e) => e.payload.offset);
  assert.equal(new Set(offsets).size, offsets.length, `distinct offsets: ${offsets}`);
  await expectNone(d, [bSocket], EV.STATUS, (p) => p?.userId === bob.user.id, { what: 'about his own marks' });
});

d.test('group of five: delivered once all four got it, read once all four read it', { timeout: 30_000 }, async () => {
  const [sender, ...members] = await d.registerAll('sender', 'm1', 'm2', 'm3', 'm4');
  const group = await d.createGroup(sender.accessToken, 'receipts of five', members.map((m) => m.user.id));
  const [sSocket] = await d.connectSockets(sender, [0]);
  const live = await Promise.all(members.slice(0, 3).map((m, i) => d.connectSockets(m, [(i + 1) % 2]).then(([s]) => s)));
  const [u1, u2, u3, u4] = members;
  const id = (u) => u.user.id;
  const viewOf = async () => (await receiptView(d, sender.accessToken, group.id))[1];

  // Three of the four are connected: each one's delivered mark reaches the sender.
  const m = await d.send(sender.accessToken, group.id, 'hello all four');
  for (const [i, s] of live.entries()) await waitEvent(s, EV.NEW, byCmid(m), { what: `member ${i + 1}` });
  for (const u of [u1, u2, u3]) await statusEvent(sSocket, group.id, id(u), 'delivered', 1);
  assert.deepEqual(await viewOf(), view('sent', 3, 0), 'three of four delivered: still sent');

  // The fourth reads without ever getting it live: a read mark is a delivered mark too.
  const [s4] = await d.connectSockets(u4, [0]);
  await ackOk(s4, 'chat.read', { chatId: group.id, sequence: 1 });
  await statusEvent(sSocket, group.id, id(u4), 'read', 1);
  assert.deepEqual(await viewOf(), view('delivered', 4, 1), 'all delivered, one read');

  // Two more read (one over a socket, one over REST): still delivered.
  await ackOk(live[0], 'chat.read', { chatId: group.id, sequence: 1 });
  const rest = await d.api('POST', `/chats/${group.id}/read`, { token: u2.accessToken, body: { sequence: 1 } });
  assert.equal(rest.status, 204, `POST /chats/:chatId/read: ${rest.status} ${JSON.stringify(rest.body)}`);
  assert.deepEqual(await viewOf(), view('delivered', 4, 3), 'three of four read: still delivered');

  // The last one reads: read.
  await ackOk(live[2], 'chat.read', { chatId: group.id, sequence: 1 });
  assert.deepEqual(await viewOf(), view('read', 4, 4), 'all four read');
  for (const u of members) await statusEvent(sSocket, group.id, id(u), 'read', 1);

  const marks = await chatWithMarks(d, u3.accessToken, group.id);
  for (const u of members) {
    assert.deepEqual(markOf(marks, id(u)), { userId: id(u), deliveredSequence: 1, readSequence: 1 }, `marks of ${u.username}`);
  }
  // Every other participant hears of each read, nobody of their own.
  await waitFor(() => [u2, u3, u4].every((u) => live[0].received(EV.STATUS).some(statusFrom(id(u), 'read', 1))), 5000,
    { message: () => `member 1 got ${JSON.stringify(live[0].received(EV.STATUS))}` });
  // A status about oneself would have been published with the others' (seen above).
  await barrier(d, [live[0], live[1], live[2], s4]);
  for (const [s, u] of [[live[0], u1], [live[1], u2], [live[2], u3], [s4, u4]]) {
    assert.equal(s.received(EV.STATUS).filter((p) => p?.userId === id(u)).length, 0, `${u.username}: a status about himself`);
  }
});

d.test('many messages quickly: few, coalesced delivered statuses (at most one per 250 ms)', { timeout: 30_000 }, async (t) => {
  const { a: alice, b: bob, chat } = await directPair(d);
  const [aSocket] = await d.connectSockets(alice, [0]);
  const [bSocket] = await d.connectSockets(bob, [1]);
  const N = 40;

  for (let batch = 0; batch < N / 10; batch++) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => d.send(alice.accessToken, chat.id, `burst ${batch * 10 + i}`)));
  }
  await waitFor(() => bSocket.count(EV.NEW, { chatId: chat.id }) === N, 15_000,
    { message: () => `bob got ${bSocket.count(EV.NEW, { chatId: chat.id })}/${N}` });
  await statusEvent(aSocket, chat.id, bob.user.id, 'delivered', N);
  await expectNone(d, [aSocket], EV.STATUS, (p) => p?.sequence > N, { what: 'beyond the last message' });

  const statuses = entries(aSocket, EV.STATUS, { pred: statusFrom(bob.user.id, 'delivered') });
  const seqs = statuses.map((e) => e.payload.sequence);
  const spanMs = statuses.at(-1).at - statuses[0].at;
  t.diagnostic(`${N} messages -> ${statuses.length} delivered statuses over ${spanMs} ms: sequences ${seqs.join(',')}`);
  for (const e of statuses) assertStatusEvent(e.payload, { chatId: chat.id, userId: bob.user.id, status: 'delivered' });
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `delivered sequences must increase: ${seqs}`);
  assert.ok(statuses.length <= N / 4, `${statuses.length} delivered statuses for ${N} messages: not coalesced`);
  assert.ok(statuses.length <= Math.floor(spanMs / 250) + 2,
    `${statuses.length} delivered statuses within ${spanMs} ms: more than one per 250 ms`);

  const views = await receiptView(d, alice.accessToken, chat.id);
  assert.equal(Object.keys(views).length, N, 'history holds every message');
  for (const [seq, v] of Object.entries(views)) assert.deepEqual(v, view('delivered', 1, 0), `message ${seq}`);
  assert.deepEqual(markOf(await chatWithMarks(d, alice.accessToken, chat.id), bob.user.id),
    { userId: bob.user.id, deliveredSequence: N, readSequence: 0 }, 'bob\'s marks');
});
