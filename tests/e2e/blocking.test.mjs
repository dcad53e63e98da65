// Blocking (contract v3 "Accounts and safety"): the routes; 403 `blocked` for direct
// chats and their sends in both directions (nothing persisted); `blockedSender: true`
// on a group's messages only for the blocker, live, in `chat.sync` and on an edit's
// `chat.message.updated`; the blocker's presence (online and offline) and typing (start
// and stop, group and direct chat) hidden from the blocked user, and shown again on the
// same socket once unblocked. There is no socket send event
// (sends are REST only); the socket side covered is delivery, `chat.sync`, typing and
// presence.

import assert from 'node:assert/strict';

import { assertError } from './contract.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  EV, ackOk, cursor, cursors, entries, expectNone, getPresence, waitEvent,
} from './realtime-helpers.mjs';

const GRACE = 2; // PRESENCE_GRACE_SECS: the blocker's offline comes soon after its socket closes
const d = useDeployment({ mode: 'split', gateways: 2, env: { PRESENCE_GRACE_SECS: String(GRACE) } });

const UPDATED = 'chat.message.updated';

const block = (who, whom, method = 'PUT') =>
  d.api(method, `/users/${whom.user.id}/block`, { token: who.accessToken });

d.test('block routes: 204 idempotent, the list, 400 for oneself, 404 for nobody', async () => {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  assertError(await block(alice, alice), 400, 'validation_failed');
  assertError(await d.api('PUT', '/users/00000000-0000-4000-8000-000000000000/block',
    { token: alice.accessToken }), 404, 'not_found');
  for (let i = 0; i < 2; i += 1) assert.equal((await block(alice, bob)).status, 204);
  const list = await d.api('GET', '/users/me/blocks', { token: alice.accessToken });
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.map((u) => u.username), [bob.username]);
  for (let i = 0; i < 2; i += 1) assert.equal((await block(alice, bob, 'DELETE')).status, 204);
  const empty = await d.api('GET', '/users/me/blocks', { token: alice.accessToken });
  assert.deepEqual(empty.body, []);
});

d.test('a block refuses direct chats and their sends both ways; nothing is persisted', async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const [bobSocket] = await d.connectSockets(bob, [1]);
  await d.send(alice.accessToken, chat.id, 'before');
  await waitEvent(bobSocket, EV.NEW, (p) => p.message?.content === 'before');

  assert.equal((await block(alice, bob)).status, 204);
  const since = cursor(bobSocket);
  assertError(await d.sendRaw(bob.accessToken, chat.id, 'from the blocked'), 403, 'blocked');
  assertError(await d.sendRaw(alice.accessToken, chat.id, 'from the blocker'), 403, 'blocked');
  for (const [from, to] of [[bob, alice], [alice, bob]]) {
    assertError(await d.api('POST', '/chats', {
      token: from.accessToken, body: { type: 'direct', participantIds: [to.user.id] },
    }), 403, 'blocked');
  }
  // Others are not affected.
  await d.createDirect(carol.accessToken, alice.user.id);

  assert.equal((await block(alice, bob, 'DELETE')).status, 204);
  await d.send(bob.accessToken, chat.id, 'after');
  const page = await waitFor(async () => {
    const p = await d.history(alice.accessToken, chat.id);
    return p.messages.length >= 2 && p;
  }, 10_000, { message: 'the message after the unblock in history' });
  assert.deepEqual(page.messages.map((m) => m.content), ['before', 'after'],
    'the refused sends were never queued nor persisted');
  await expectNone(d, [bobSocket], EV.NEW, (p) => p.message?.content?.startsWith('from the'), { since });
});

d.test('group messages of a blocked sender carry blockedSender only for the blocker (live and chat.sync)', async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(alice.accessToken, 'team', [bob.user.id, carol.user.id]);
  assert.equal((await block(alice, bob)).status, 204);
  const [aliceSocket] = await d.connectSockets(alice, [0]);
  const [carolSocket] = await d.connectSockets(carol, [1]);
  const [bobSocket] = await d.connectSockets(bob, [0]);

  const fromBob = await d.send(bob.accessToken, group.id, 'hello from bob');
  const fromCarol = await d.send(carol.accessToken, group.id, 'hello from carol');
  const byId = (id) => (p) => p.message?.clientMessageId === id;
  const aliceGot = await waitEvent(aliceSocket, EV.NEW, byId(fromBob.clientMessageId));
  assert.equal(aliceGot.payload.message.blockedSender, true, JSON.stringify(aliceGot.payload));
  const carolGot = await waitEvent(carolSocket, EV.NEW, byId(fromBob.clientMessageId));
  assert.ok(!Object.hasOwn(carolGot.payload.message, 'blockedSender'), JSON.stringify(carolGot.payload));
  const aliceCarol = await waitEvent(aliceSocket, EV.NEW, byId(fromCarol.clientMessageId));
  assert.ok(!Object.hasOwn(aliceCarol.payload.message, 'blockedSender'));
  const saved = await waitEvent(bobSocket, EV.SAVED, byId(fromBob.clientMessageId));
  assert.ok(!Object.hasOwn(saved.payload.message, 'blockedSender'), 'the sender\'s own copy is plain');
  assert.equal(entries(aliceSocket, EV.NEW, { pred: byId(fromBob.clientMessageId) }).length, 1, 'once');

  const flags = (ack) => ack.messages.map((m) => [m.content, m.blockedSender ?? null]);
  const aliceSync = await ackOk(aliceSocket, 'chat.sync', { chats: { [group.id]: 0 } });
  assert.deepEqual(flags(aliceSync), [['hello from bob', true], ['hello from carol', null]]);
  const carolSync = await ackOk(carolSocket, 'chat.sync', { chats: { [group.id]: 0 } });
  assert.deepEqual(flags(carolSync), [['hello from bob', null], ['hello from carol', null]]);
  const history = await d.history(alice.accessToken, group.id);
  assert.deepEqual(history.messages.map((m) => m.blockedSender ?? null), [true, null]);

  // An edit: `chat.message.updated` is flagged the same way.
  const since = cursors([aliceSocket, carolSocket, bobSocket]);
  const edited = (p) => p.message?.id === aliceGot.payload.message.id && p.message.content === 'edited by bob';
  const res = await d.api('PATCH', `/chats/${group.id}/messages/${aliceGot.payload.message.id}`,
    { token: bob.accessToken, body: { content: 'edited by bob' } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const aliceEdit = await waitEvent(aliceSocket, UPDATED, edited, { since: since.get(aliceSocket) });
  assert.equal(aliceEdit.payload.message.blockedSender, true, JSON.stringify(aliceEdit.payload));
  for (const c of [carolSocket, bobSocket]) {
    const got = await waitEvent(c, UPDATED, edited, { since: since.get(c) });
    assert.ok(!Object.hasOwn(got.payload.message, 'blockedSender'), `${c.label}: ${JSON.stringify(got.payload)}`);
  }
});

d.test('the blocked user sees neither the blocker\'s presence nor typing', { timeout: 60_000 }, async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(alice.accessToken, 'team', [bob.user.id, carol.user.id]);
  const dm = await d.createDirect(alice.accessToken, bob.user.id);
  assert.equal((await block(alice, bob)).status, 204);
  const [bobSocket] = await d.connectSockets(bob, [0]);
  const [carolSocket] = await d.connectSockets(carol, [1]);
  const since = cursors([bobSocket, carolSocket]);
  const [aliceSocket] = await d.connectSockets(alice, [1]);
  const aboutAlice = (p) => p?.userId === alice.user.id;
  await waitEvent(carolSocket, EV.PRESENCE, aboutAlice, { since: since.get(carolSocket), what: 'alice online' });

  await ackOk(aliceSocket, 'chat.typing', { chatId: group.id, isTyping: true });
  await waitEvent(carolSocket, EV.TYPING, aboutAlice, { since: since.get(carolSocket), what: 'alice typing' });
  await expectNone(d, [bobSocket], EV.PRESENCE, aboutAlice, { since });
  await expectNone(d, [bobSocket], EV.TYPING, aboutAlice, { since });

  const seenByBob = await getPresence(d, bob.accessToken, alice.user.id);
  assert.equal(seenByBob.status, 200);
  assert.deepEqual(seenByBob.body, { userId: alice.user.id, status: 'offline', lastSeenAt: null });
  const seenByCarol = await getPresence(d, carol.accessToken, alice.user.id);
  assert.equal(seenByCarol.body.status, 'online');

  // The blocker still sees the blocked user type.
  const aliceSince = cursor(aliceSocket);
  await ackOk(bobSocket, 'chat.typing', { chatId: group.id, isTyping: true });
  await waitEvent(aliceSocket, EV.TYPING, (p) => p?.userId === bob.user.id, { since: aliceSince });

  // Nor the blocker's typing stop, in the group or in their direct chat (typing is
  // not a send: the block does not refuse it), nor its going offline.
  const later = cursors([bobSocket, carolSocket]);
  await ackOk(aliceSocket, 'chat.typing', { chatId: dm.id, isTyping: true });
  await ackOk(aliceSocket, 'chat.typing', { chatId: group.id, isTyping: false });
  await waitEvent(carolSocket, EV.TYPING, (p) => aboutAlice(p) && p.isTyping === false,
    { since: later.get(carolSocket), what: 'alice stopped typing' });
  aliceSocket.close();
  await waitEvent(carolSocket, EV.PRESENCE, (p) => aboutAlice(p) && p.status === 'offline',
    { since: later.get(carolSocket), timeoutMs: GRACE * 1000 + 6000, what: 'alice offline' });
  await expectNone(d, [bobSocket], EV.PRESENCE, aboutAlice, { since: later });
  await expectNone(d, [bobSocket], EV.TYPING, aboutAlice, { since: later });

  // The control: once unblocked, the same socket of bob's gets both.
  assert.equal((await block(alice, bob, 'DELETE')).status, 204);
  const unblocked = cursor(bobSocket);
  const [again] = await d.connectSockets(alice, [1]);
  await waitEvent(bobSocket, EV.PRESENCE, (p) => aboutAlice(p) && p.status === 'online',
    { since: unblocked, what: 'alice online after the unblock' });
  await ackOk(again, 'chat.typing', { chatId: group.id, isTyping: true });
  await waitEvent(bobSocket, EV.TYPING, aboutAlice, { since: unblocked, what: 'alice typing after the unblock' });
  const seen = await getPresence(d, bob.accessToken, alice.user.id);
  assert.equal(seen.body.status, 'online', JSON.stringify(seen.body));
});
