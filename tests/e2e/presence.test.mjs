// Presence (contract "Typing and presence"): `presence.update` to the users who share a
// chat, online while any socket is open on any gateway, offline PRESENCE_GRACE_SECS after
// the last one closed (not at all when the user is back within the grace), offline after
// the user's gateway died (GATEWAY_LEASE_SECS); the REST lookups and their privacy rule.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { assertError } from './contract.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  EV, assertPresence, bulkPresence, cursor, cursors, directPair, entries, expectNone, getPresence, waitEvent,
} from './realtime-helpers.mjs';

const GRACE = 2; // PRESENCE_GRACE_SECS
const LEASE = 3; // GATEWAY_LEASE_SECS (the gateways heartbeat every second)
const d = useDeployment({
  mode: 'split', gateways: 2, env: { PRESENCE_GRACE_SECS: String(GRACE), GATEWAY_LEASE_SECS: String(LEASE) },
});

const about = (userId, status) => (p) => p?.userId === userId && (status === undefined || p?.status === status);

/** Waits for `presence.update` {userId, status} on `client` after `since`; resolves the entry. */
function presenceOf(client, userId, status, since, timeoutMs = 5000) {
  return waitEvent(client, EV.PRESENCE, about(userId, status), { since, timeoutMs, what: `${userId} ${status}` });
}

/** Waits until the gateways hold `n` sockets of `userId` (a close was handled). */
function socketsOf(userId, n) {
  const key = `${d.redisPrefix}user:${userId}:sockets`;
  return waitFor(async () => Number((await d.infra.redisCli(['HLEN', key])).stdout.trim()) === n, 5000,
    { message: `${userId} holds ${n} sockets` });
}

/**
 * A contact of `account`'s, with one socket open on gateway `g` and announced online
 * to `watcher` (after `since`): closed later, its offline is the control that a
 * presence sweep ran (see `expectNone` uses below).
 */
async function control(account, watcher, since, g = 0) {
  const carol = await d.register('control');
  await d.createDirect(account.accessToken, carol.user.id);
  const [socket] = await d.connectSockets(carol, [g]);
  await presenceOf(watcher, carol.user.id, 'online', since);
  return { user: carol.user, socket };
}

/** GET /users/:userId/presence as `token`, asserted 200 and {userId, status}; resolves the body. */
async function lookup(token, userId, status, lastSeenAt) {
  const res = await getPresence(d, token, userId);
  assert.equal(res.status, 200, `GET /users/${userId}/presence: ${res.status} ${JSON.stringify(res.body)}`);
  return assertPresence(res.body, { userId, status, lastSeenAt });
}

d.test('a contact gets presence.update online when a user connects; a stranger does not', async () => {
  const { a: alice, b: bob } = await directPair(d);
  const carol = await d.register('carol');
  const [aSocket] = await d.connectSockets(alice, [0]);
  const [cSocket] = await d.connectSockets(carol, [1]);
  const since = cursors([aSocket, cSocket]);

  const before = Date.now();
  const [bSocket] = await d.connectSockets(bob, [1]);
  const online = await presenceOf(aSocket, bob.user.id, 'online', since.get(aSocket));
  assertPresence(online.payload, { userId: bob.user.id, status: 'online' });
  const seen = Date.parse(online.payload.lastSeenAt);
  assert.ok(seen >= before - 1000 && seen <= online.at + 1000,
    `lastSeenAt of a user who just came online: ${online.payload.lastSeenAt}`);
  await expectNone(d, [cSocket], EV.PRESENCE, about(bob.user.id), { since, what: 'about a user sharing no chat' });
  assert.ok(bSocket.connected);
});

d.test('two devices: closing one keeps the user online; closing both gives offline after the grace', { timeout: 30_000 }, async (t) => {
  const { a: alice, b: bob } = await directPair(d);
  const [aSocket] = await d.connectSockets(alice, [0]);
  let since = cursor(aSocket);
  const [b1] = await d.connectSockets(bob, [0]);
  await presenceOf(aSocket, bob.user.id, 'online', since);
  const [b2] = await d.connectSockets(bob, [1]);
  const carol = await control(alice, aSocket, since);

  // The second device and the closing of the first change nothing, even after the grace:
  // carol's only socket, closed after it, goes offline through a sweep that would have
  // taken bob too.
  b1.close();
  await socketsOf(bob.user.id, 1);
  carol.socket.close();
  await presenceOf(aSocket, carol.user.id, 'offline', since, GRACE * 1000 + 6000);
  await expectNone(d, [aSocket], EV.PRESENCE, (p) => p?.userId === bob.user.id && p.status === 'offline',
    { since, what: 'offline while a device is still connected' });
  assert.equal(entries(aSocket, EV.PRESENCE, { since, pred: about(bob.user.id) }).length, 1,
    'alice: one presence.update (online) for two devices');
  await lookup(alice.accessToken, bob.user.id, 'online');

  since = cursor(aSocket);
  const closedAt = Date.now();
  b2.close();
  const offline = await presenceOf(aSocket, bob.user.id, 'offline', since, GRACE * 1000 + 6000);
  const after = offline.at - closedAt;
  t.diagnostic(`offline ${after} ms after the last socket closed (grace ${GRACE} s)`);
  assert.ok(after >= GRACE * 1000 - 200, `offline ${after} ms after the last socket closed: before the ${GRACE} s grace`);
  assert.ok(after <= GRACE * 1000 + 3000, `offline ${after} ms after the last socket closed: long after the ${GRACE} s grace`);
  assertPresence(offline.payload, { userId: bob.user.id, status: 'offline' });
  const lastSeen = Date.parse(offline.payload.lastSeenAt);
  assert.ok(Math.abs(lastSeen - closedAt) < 1500,
    `lastSeenAt ${offline.payload.lastSeenAt} should be when the last socket closed (${new Date(closedAt).toISOString()})`);

  // REST agrees, single and bulk (in the order asked), with the same lastSeenAt.
  const single = await lookup(alice.accessToken, bob.user.id, 'offline');
  assert.equal(Date.parse(single.lastSeenAt), lastSeen, 'GET presence lastSeenAt = the event\'s');
  const bulk = await bulkPresence(d, alice.accessToken, [bob.user.id, alice.user.id]);
  assert.equal(bulk.status, 200, `POST /users/presence: ${bulk.status} ${JSON.stringify(bulk.body)}`);
  assert.equal(bulk.body?.presence?.length, 2, `bulk body ${JSON.stringify(bulk.body)}`);
  assertPresence(bulk.body.presence[0], { userId: bob.user.id, status: 'offline' });
  assert.equal(Date.parse(bulk.body.presence[0].lastSeenAt), lastSeen, 'bulk lastSeenAt = the event\'s');
  assertPresence(bulk.body.presence[1], { userId: alice.user.id, status: 'online' });
  await expectNone(d, [aSocket], EV.PRESENCE, (p) => p?.userId === bob.user.id && p !== offline.payload,
    { since, what: 'besides the one offline' });
});

d.test('a user back within the grace (on the other gateway) never goes offline', { timeout: 30_000 }, async () => {
  const { a: alice, b: bob } = await directPair(d);
  const [aSocket] = await d.connectSockets(alice, [1]);
  const before = cursor(aSocket);
  const [b1] = await d.connectSockets(bob, [0]);
  await presenceOf(aSocket, bob.user.id, 'online', before);
  const carol = await control(alice, aSocket, before);

  const since = cursor(aSocket);
  b1.close();
  await socketsOf(bob.user.id, 0);
  // Carol's only socket, closed after bob's, goes offline through a sweep that would
  // have taken bob too, had he not come back.
  carol.socket.close();
  const [b2] = await d.connectSockets(bob, [1]);
  await presenceOf(aSocket, carol.user.id, 'offline', since, GRACE * 1000 + 6000);
  await expectNone(d, [aSocket], EV.PRESENCE, about(bob.user.id),
    { since, what: 'for a user who came back within the grace' });
  await lookup(alice.accessToken, bob.user.id, 'online');
  assert.ok(b2.connected);
});

d.test('REST presence lookups: oneself and contacts only (403 otherwise), bulk in the order asked', async () => {
  const [alice, bob, dave, carol] = await d.registerAll('alice', 'bob', 'dave', 'carol');
  await d.createGroup(alice.accessToken, 'presence group', [bob.user.id, dave.user.id]);
  await d.connectSockets(alice, [0]);
  await d.connectSockets(bob, [1]);

  const self = await lookup(alice.accessToken, alice.user.id, 'online');
  assert.ok(Math.abs(Date.parse(self.lastSeenAt) - Date.now()) < 5000, `online lastSeenAt is now: ${self.lastSeenAt}`);
  await lookup(alice.accessToken, bob.user.id, 'online');
  await lookup(alice.accessToken, dave.user.id, 'offline', null); // never connected
  await lookup(carol.accessToken, carol.user.id, 'offline', null); // oneself, even with no chat at all

  const bulk = await bulkPresence(d, alice.accessToken, [dave.user.id, bob.user.id, alice.user.id]);
  assert.equal(bulk.status, 200, `POST /users/presence: ${bulk.status} ${JSON.stringify(bulk.body)}`);
  assert.deepEqual(bulk.body.presence.map((p) => [p.userId, p.status]),
    [[dave.user.id, 'offline'], [bob.user.id, 'online'], [alice.user.id, 'online']], 'bulk presence, in order');
  bulk.body.presence.forEach((p) => assertPresence(p));
  assert.equal(bulk.body.presence[0].lastSeenAt, null, 'never seen: lastSeenAt null');

  // Privacy: nothing about users who share no chat with the caller.
  assertError(await getPresence(d, alice.accessToken, carol.user.id), 403, 'forbidden');
  assertError(await getPresence(d, carol.accessToken, alice.user.id), 403, 'forbidden');
  assertError(await bulkPresence(d, alice.accessToken, [bob.user.id, carol.user.id]), 403, 'forbidden');
  assertError(await bulkPresence(d, carol.accessToken, [carol.user.id, dave.user.id]), 403, 'forbidden');
  assertError(await getPresence(d, alice.accessToken, randomUUID()), 403, 'forbidden');
  assertError(await bulkPresence(d, alice.accessToken, Array.from({ length: 501 }, () => randomUUID())),
    400, 'validation_failed');
  assertError(await getPresence(d, undefined, alice.user.id), 401, 'unauthorized');
});

// Last: it kills gateway 1 of this file's deployment.
d.test('kill -9 of a gateway: its users go offline after the lease, unless back on the other gateway', { timeout: 40_000 }, async (t) => {
  const [alice, bob, eve] = await d.registerAll('alice', 'bob', 'eve');
  await d.createGroup(alice.accessToken, 'lease group', [bob.user.id, eve.user.id]);
  const [aSocket] = await d.connectSockets(alice, [1]); // on the survivor
  const before = cursor(aSocket);
  const [bSocket] = await d.connectSockets(bob, [0]);
  const [eSocket] = await d.connectSockets(eve, [0]);
  await presenceOf(aSocket, bob.user.id, 'online', before);
  await presenceOf(aSocket, eve.user.id, 'online', before);

  // Eve fails over to gateway 2 as soon as her socket drops; Bob does not come back.
  const eveBack = new Promise((resolve, reject) => {
    eSocket.socket.once('disconnect', () => d.connect(1, eve.accessToken, { label: 'eve@gw2' }).then(resolve, reject));
  });
  const since = cursor(aSocket);
  const killedAt = Date.now();
  const exit = await d.process('gateway-1').kill('SIGKILL');
  assert.equal(exit?.signal, 'SIGKILL');
  await waitFor(() => !bSocket.connected, 5000, { message: 'bob\'s socket drops with its gateway' });
  const eSocket2 = await eveBack;

  const offline = await presenceOf(aSocket, bob.user.id, 'offline', since, LEASE * 1000 + 10_000);
  const after = offline.at - killedAt;
  t.diagnostic(`offline ${after} ms after kill -9 of the gateway (lease ${LEASE} s)`);
  assert.ok(after <= LEASE * 1000 + 5000,
    `bob went offline ${after} ms after his gateway died: not within the ${LEASE} s lease + a few seconds`);
  assertPresence(offline.payload, { userId: bob.user.id, status: 'offline' });
  const lastSeen = Date.parse(offline.payload.lastSeenAt);
  assert.ok(lastSeen <= offline.at && lastSeen >= killedAt - (LEASE + GRACE + 1) * 1000,
    `lastSeenAt ${offline.payload.lastSeenAt} of a user lost with his gateway (killed at ${new Date(killedAt).toISOString()})`);

  // Eve, connected again elsewhere, is never announced offline: lost with the same
  // gateway as bob, she would have gone in the sweep that took him.
  await expectNone(d, [aSocket], EV.PRESENCE, about(eve.user.id, 'offline'),
    { since, what: 'for a user who reconnected to the surviving gateway' });
  await lookup(alice.accessToken, eve.user.id, 'online');
  await lookup(alice.accessToken, bob.user.id, 'offline');
  assert.ok(aSocket.connected && eSocket2.connected, 'sockets on the surviving gateway stay connected');
});
