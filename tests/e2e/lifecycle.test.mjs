// Message lifecycle end to end (contract "Message lifecycle", "Chat management events"):
// two users, and a group of four, on two gateways (WebSocket and long-polling) see every
// edit, delete, reaction and pin once, in chat order, on every socket; a burst mixing
// sends, edits, deletes and reactions ends identical in history and in every client's log;
// chat.updated / chat.removed keep chat lists live; a removed member hears nothing more.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { useDeployment, waitFor } from './harness.mjs';
import {
  LIFE, assertConverged, assertOnce, burst, describeEvent, edit, pin, react, remove, stored, timeline,
} from './lifecycle-helpers.mjs';
import { cursors, expectNone, waitEvent } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

/** Every socket ends with the same timeline (offsets and per-reader fields aside). */
function assertSameTimeline(clients, chatId, since, expectedNames) {
  const logs = clients.map((c) => timeline(c, chatId, { since: since.get(c) }));
  for (const [i, c] of clients.entries()) {
    assert.deepEqual(logs[i].map((e) => (e.event === LIFE.SAVED ? LIFE.NEW : e.event)), expectedNames,
      `${c.label}: the events of the chat, in order`);
    assert.deepEqual(logs[i].map(describeEvent), logs[0].map(describeEvent), `${c.label} saw what ${clients[0].label} saw`);
    assertOnce(c, chatId);
  }
}

d.test('direct chat: edit, reaction, pin and delete reach every socket once, in chat order', { timeout: 60_000 }, async () => {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const [a1] = await d.connectSockets(alice, [0]);
  const [b1] = await d.connectSockets(bob, [1]);
  const [b2] = await d.connectSockets(bob, [0], { transports: ['polling'] });
  const sockets = [a1, b1, b2];
  const since = cursors(sockets);

  const sent = await d.send(alice.accessToken, chat.id, 'hello');
  const m = await stored(d, alice.accessToken, chat.id, sent.clientMessageId);
  await edit(d, alice.accessToken, chat.id, m.id, 'hello, edited');
  await react(d, bob.accessToken, chat.id, m.id, '👍');
  await pin(d, bob.accessToken, chat.id, m.id);
  await remove(d, alice.accessToken, chat.id, m.id);
  const names = [LIFE.NEW, LIFE.UPDATED, LIFE.REACTION, LIFE.PINS, LIFE.DELETED, LIFE.PINS];
  for (const s of sockets) {
    await waitEvent(s, LIFE.PINS, (p) => p.pinned === false, { since: since.get(s), timeoutMs: 10_000 });
  }
  assertSameTimeline(sockets, chat.id, since, names);
  const log = timeline(b1, chat.id, { since: since.get(b1) });
  assert.equal(log[1].payload.message.content, 'hello, edited');
  assert.ok(log[1].payload.message.editedAt, 'editedAt set');
  assert.deepEqual(log[2].payload, { offset: log[2].payload.offset, chatId: chat.id, messageId: m.id, emoji: '👍', userId: bob.user.id, added: true, count: 1 });
  assert.deepEqual(log[4].payload, { offset: log[4].payload.offset, chatId: chat.id, messageId: m.id, sequence: m.sequence });
  for (const e of log) assert.equal(typeof e.payload.offset, 'string', `${e.event} carries an offset`);
  await assertConverged(d, alice.accessToken, chat.id, sockets);
});

d.test('group of four: a rename, sends and changes reach every member in one order', { timeout: 60_000 }, async () => {
  const [owner, ...members] = await d.registerAll('owner', 'm1', 'm2', 'm3');
  const group = await d.createGroup(owner.accessToken, 'four', members.map((m) => m.user.id));
  const sockets = [
    ...(await d.connectSockets(owner, [0])),
    ...(await d.connectSockets(members[0], [1])),
    ...(await d.connectSockets(members[1], [0, 1])),
    ...(await d.connectSockets(members[2], [1], { transports: ['polling', 'websocket'] })),
  ];
  const since = cursors(sockets);
  const renamed = await d.api('PATCH', `/chats/${group.id}`, { token: owner.accessToken, body: { title: 'four, renamed' } });
  assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
  for (const s of sockets) {
    const got = await waitEvent(s, LIFE.CHAT_UPDATED, (p) => p.chat?.title === 'four, renamed', { since: since.get(s) });
    assert.equal(got.payload.chat.id, group.id);
  }
  const sent = await d.send(members[0].accessToken, group.id, 'in the group');
  const m = await stored(d, owner.accessToken, group.id, sent.clientMessageId);
  await react(d, members[1].accessToken, group.id, m.id, 'tada');
  await react(d, members[2].accessToken, group.id, m.id, 'tada');
  await edit(d, members[0].accessToken, group.id, m.id, 'in the group (edited)');
  await react(d, members[1].accessToken, group.id, m.id, 'tada', false);
  await remove(d, owner.accessToken, group.id, m.id);
  for (const s of sockets) await waitEvent(s, LIFE.DELETED, () => true, { since: since.get(s), timeoutMs: 10_000 });
  assertSameTimeline(sockets, group.id, since,
    [LIFE.NEW, LIFE.REACTION, LIFE.REACTION, LIFE.UPDATED, LIFE.REACTION, LIFE.DELETED]);
  const counts = timeline(sockets[0], group.id, { since: since.get(sockets[0]) })
    .filter((e) => e.event === LIFE.REACTION).map((e) => e.payload.count);
  assert.deepEqual(counts, [1, 2, 1], 'exact counts');
  const updated = timeline(sockets[2], group.id, { since: since.get(sockets[2]) }).find((e) => e.event === LIFE.UPDATED);
  assert.deepEqual(updated.payload.message.reactions, [{ emoji: 'tada', count: 2, me: true }], 'me for the receiving user');
  await assertConverged(d, owner.accessToken, group.id, sockets);
});

d.test('a burst of sends, edits, deletes and reactions ends identical in history and every log', { timeout: 90_000 }, async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(alice.accessToken, 'burst', [bob.user.id, carol.user.id]);
  const people = [alice, bob, carol];
  const sockets = [
    ...(await d.connectSockets(alice, [0])),
    ...(await d.connectSockets(bob, [1, 0])),
    ...(await d.connectSockets(carol, [1], { transports: ['polling'] })),
  ];
  // Round 1: sends from everyone at once.
  const first = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    d.send(people[i % 3].accessToken, group.id, `m${i}`)));
  const msgs = await Promise.all(first.map((s) => stored(d, alice.accessToken, group.id, s.clientMessageId, 20_000)));
  // Round 2: more sends mixed with edits, deletes and reactions on round 1, all at once.
  // An edit or reaction that finds its message already deleted is refused (404).
  const { change, accepted } = burst(d, group.id);
  const ops = [];
  for (const [i, m] of msgs.entries()) {
    const author = people[i % 3].accessToken;
    if (i % 3 === 0) ops.push(change('PATCH', m.id, author, { content: `m${i} edited` }));
    if (i % 5 === 0) ops.push(change('DELETE', m.id, author));
    if (i % 2 === 0) ops.push(...people.map((p) => change('PUT', `${m.id}/reactions/❤️`, p.accessToken)));
    if (i % 7 === 0) ops.push(change('PUT', `${m.id}/reactions/ok`, bob.accessToken));
    ops.push(d.send(people[(i + 1) % 3].accessToken, group.id, `r${i}`));
  }
  await Promise.all(ops);
  // Logs can equal history while commands are still queued: first wait until every
  // accepted change and every send was applied.
  await waitFor(async () => Number(await d.sql(`SELECT (SELECT count(*) FROM applied_commands
      WHERE chat_id = '${group.id}' AND effect::text NOT LIKE '%"type": "chat"%')
    + (SELECT count(*) FROM messages WHERE chat_id = '${group.id}')`)) >= accepted() + 60, 30_000,
  { intervalMs: 200, message: () => `not every accepted change was applied (${accepted()} + 60 sends)` });
  const state = await assertConverged(d, alice.accessToken, group.id, sockets, 30_000);
  assert.equal(Object.keys(state).length, 60, 'every send stored once');
  const seqs = Object.values(state).map((m) => m.sequence).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 1), 'sequences without gaps');
  for (const s of sockets) assertOnce(s, group.id);
  const hearts = Object.values(state).filter((m) => m.reactions['❤️']).map((m) => m.reactions['❤️']);
  assert.ok(hearts.every((n) => n === 3), `three hearts where any: ${hearts}`);
});

d.test('removing a member: chat.removed to them, chat.updated to the rest, then nothing of the chat', { timeout: 60_000 }, async () => {
  const [owner, bob, carol, dave] = await d.registerAll('owner', 'bob', 'carol', 'dave');
  const group = await d.createGroup(owner.accessToken, 'leavers', [bob.user.id, carol.user.id]);
  const [o1] = await d.connectSockets(owner, [0]);
  const [c1, c2] = await d.connectSockets(carol, [0, 1]);
  const [dv] = await d.connectSockets(dave, [1]);
  const since = cursors([o1, c1, c2, dv]);
  const res = await d.api('DELETE', `/chats/${group.id}/participants/${carol.user.id}`, { token: owner.accessToken });
  assert.equal(res.status, 204);
  for (const c of [c1, c2]) {
    const got = await waitEvent(c, LIFE.CHAT_REMOVED, (p) => p.chatId === group.id, { since: since.get(c) });
    assert.equal(typeof got.payload.offset, 'string');
  }
  await waitEvent(o1, LIFE.CHAT_UPDATED, (p) => p.chat?.id === group.id
    && !p.chat.participants.some((x) => x.userId === carol.user.id), { since: since.get(o1) });
  const refused = await d.sendRaw(carol.accessToken, group.id, 'let me back', randomUUID());
  assert.equal(refused.status, 403, 'no send after removal');
  const typing = await c1.ack('chat.typing', { chatId: group.id, isTyping: true });
  assert.equal(typing.code, 'forbidden', 'no typing after removal');
  const read = await c1.ack('chat.read', { chatId: group.id, sequence: 0 });
  assert.equal(read.code, 'forbidden', 'no read after removal');

  // Dave is added: he learns of the chat live, then gets its messages; carol gets nothing.
  const add = await d.api('POST', `/chats/${group.id}/participants`, { token: owner.accessToken, body: { userIds: [dave.user.id] } });
  assert.equal(add.status, 200);
  await waitEvent(dv, LIFE.CHAT_UPDATED, (p) => p.chat?.id === group.id, { since: since.get(dv) });
  const afterRemoval = cursors([c1, c2]);
  const sent = await d.send(owner.accessToken, group.id, 'carol is gone');
  await waitEvent(dv, LIFE.NEW, (p) => p.message?.clientMessageId === sent.clientMessageId, { since: since.get(dv) });
  const m = await stored(d, owner.accessToken, group.id, sent.clientMessageId);
  await react(d, bob.accessToken, group.id, m.id, 'wave');
  await waitEvent(dv, LIFE.REACTION, (p) => p.messageId === m.id, { since: since.get(dv) });
  await expectNone(d, [c1, c2], LIFE.NEW, (p) => p.chatId === group.id, { since: afterRemoval, what: 'of a chat they left' });
  await expectNone(d, [c1, c2], LIFE.REACTION, (p) => p.chatId === group.id, { since: afterRemoval, what: 'of a chat they left' });
});
