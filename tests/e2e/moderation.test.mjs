// Moderation (contract v3 "Accounts and safety", Admin): the role granted by the
// `courier admin grant` binary; 403 `forbidden` for everyone else; report -> list ->
// resolve; a ban closes the banned user's sockets on both gateways with `auth.revoked`
// {reason: "banned"} within 1 s and their login gets 403 `banned`; a moderator delete
// reaches the members as `chat.message.deleted` with `deletedBy: "moderator"`; every
// action arrives on the integration exchange as `admin.<action>` (a queue bound with
// `admin.*`, consumed with amqplib).

import assert from 'node:assert/strict';
import { after } from 'node:test';

import amqplib from 'amqplib';

import { assertError } from './contract.mjs';
import { run, useDeployment, waitFor } from './harness.mjs';
import { EV, waitEvent } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });
const REVOKED = 'auth.revoked';
const DELETED = 'chat.message.deleted';

/** Runs `courier admin <args>` with the deployment's environment. */
const adminCli = (...args) => run(d.binary('courier'), ['admin', ...args],
  { env: d.env(), cwd: d.created.cwd, timeoutMs: 30_000 });

let amqp = null;
after(() => amqp?.close().catch(() => {}));

/** Every `admin.*` event of the deployment's integration exchange, as it arrives. */
const adminEvents = d.shared(async () => {
  const ep = d.infra.endpoints;
  const url = `amqp://${encodeURIComponent(ep.rabbitUser)}:${encodeURIComponent(ep.rabbitPassword)}`
    + `@${ep.rabbitHost}:${ep.rabbitPort}/${encodeURIComponent(d.vhost)}`;
  const conn = await amqplib.connect(url);
  amqp = conn;
  conn.on('error', () => {});
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, 'chat.integrations', 'admin.*');
  const seen = [];
  await ch.consume(queue, (msg) => {
    seen.push({ key: msg.fields.routingKey, id: msg.properties.messageId, body: JSON.parse(msg.content.toString()) });
    ch.ack(msg);
  });
  return { seen };
});

/** Waits for the `admin.<action>` event about `targetId`; resolves its body. */
async function adminEvent(action, targetId, timeoutMs = 15_000) {
  const { seen } = await adminEvents();
  const found = await waitFor(() => seen.find((e) => e.key === `admin.${action}` && e.body.data.targetId === targetId),
    timeoutMs, { message: () => `no admin.${action} for ${targetId}; got ${JSON.stringify(seen.map((e) => e.key))}` });
  assert.equal(found.id, found.body.id, 'the AMQP message id is the body\'s id');
  return found.body;
}

/** The admin, granted with the binary (shared by the tests). */
const admin = d.shared(async () => {
  await adminEvents();
  const account = await d.register('admin');
  const { stdout } = await adminCli('grant', account.username);
  assert.match(stdout, new RegExp(`^${account.username} \\(${account.user.id}\\) is now an admin\\n$`));
  return account;
});

d.test('courier admin grants the role; everyone else gets 403 forbidden on the admin routes', async () => {
  const plain = await d.register('plain');
  const routes = [
    ['GET', '/admin/reports'],
    ['POST', `/admin/reports/${plain.user.id}/resolve`],
    ['POST', `/admin/users/${plain.user.id}/ban`, { reason: 'x' }],
    ['DELETE', `/admin/users/${plain.user.id}/ban`],
    ['DELETE', `/admin/messages/${plain.user.id}`],
  ];
  for (const [method, path, body] of routes) {
    assertError(await d.api(method, path, { token: plain.accessToken, body }), 403, 'forbidden');
  }
  const mod = await admin();
  assert.equal((await d.api('GET', '/admin/reports', { token: mod.accessToken })).status, 200);
  const granted = await adminEvent('grant_admin', mod.user.id);
  assert.equal(granted.data.actorId, null, 'granted at the command line');
  assert.equal(granted.type, 'admin.grant_admin');

  const again = await adminCli('grant', mod.username);
  assert.match(again.stdout, /was already an admin/);
  const err = await adminCli('grant', 'no_such_user').then(() => null, (e) => e);
  assert.ok(err, 'an unknown user fails');
  assert.equal(err.exitCode, 1);
  assert.deepEqual(err.stderr.trim().split('\n'), ['admin: no user is named "no_such_user"']);

  // Revoked at the command line: refused at once, with the same token.
  const other = await d.register('briefly');
  await adminCli('grant', other.username);
  assert.equal((await d.api('GET', '/admin/reports', { token: other.accessToken })).status, 200);
  await adminCli('revoke', other.username);
  assertError(await d.api('GET', '/admin/reports', { token: other.accessToken }), 403, 'forbidden');
  await adminEvent('revoke_admin', other.user.id);
});

d.test('a report is filed, listed and resolved', async () => {
  const mod = await admin();
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createGroup(alice.accessToken, 'reports', [bob.user.id]);
  await d.send(bob.accessToken, chat.id, 'rude words');
  const page = await waitFor(async () => {
    const p = await d.history(alice.accessToken, chat.id);
    return p.messages.length === 1 && p;
  }, 10_000, { message: 'the message in history' });
  const messageId = page.messages[0].id;

  assertError(await d.api('POST', '/reports',
    { token: alice.accessToken, body: { messageId, userId: bob.user.id, reason: 'x' } }), 400, 'validation_failed');
  const filed = await d.api('POST', '/reports', { token: alice.accessToken, body: { messageId, reason: 'harassment' } });
  assert.equal(filed.status, 201, JSON.stringify(filed.body));
  assert.deepEqual(Object.keys(filed.body).sort(), ['createdAt', 'id', 'status']);
  assert.equal(filed.body.status, 'open');

  const open = await d.api('GET', '/admin/reports?status=open', { token: mod.accessToken });
  assert.equal(open.status, 200);
  const listed = open.body.reports.find((r) => r.id === filed.body.id);
  assert.ok(listed, JSON.stringify(open.body));
  assert.equal(listed.messageId, messageId);
  assert.equal(listed.userId, bob.user.id);
  assert.equal(listed.reporterId, alice.user.id);
  assert.equal(listed.messageContent, 'rude words');

  const resolved = await d.api('POST', `/admin/reports/${filed.body.id}/resolve`,
    { token: mod.accessToken, body: { note: 'warned bob' } });
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
  assert.equal(resolved.body.status, 'resolved');
  assert.equal(resolved.body.resolvedBy, mod.user.id);
  assertError(await d.api('POST', `/admin/reports/${filed.body.id}/resolve`, { token: mod.accessToken }),
    409, 'conflict');
  const after = await d.api('GET', '/admin/reports?status=open', { token: mod.accessToken });
  assert.ok(!after.body.reports.some((r) => r.id === filed.body.id));
  const event = await adminEvent('resolve_report', filed.body.id);
  assert.equal(event.data.actorId, mod.user.id);
  assert.equal(event.data.details.note, 'warned bob');
});

d.test('a ban closes the banned user\'s sockets on both gateways within 1 s; logins get 403 banned', async () => {
  const mod = await admin();
  const [user, bystander] = await d.registerAll('banned', 'bystander');
  const sockets = await d.connectSockets(user, [0, 1]);
  for (const s of sockets) {
    s.closed = null;
    s.socket.on('disconnect', (reason) => { s.closed = { reason, at: Date.now() }; });
  }
  const [other] = await d.connectSockets(bystander, [1]);

  const start = Date.now();
  const res = await d.api('POST', `/admin/users/${user.user.id}/ban`,
    { token: mod.accessToken, body: { reason: 'spam' } });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  const took = [];
  for (const s of sockets) {
    await waitFor(() => s.closed !== null, 5000, { message: `${s.label}: not disconnected` });
    const got = s.events.find((e) => e.event === REVOKED);
    assert.deepEqual(got?.payload, { reason: 'banned' }, `${s.label}: ${REVOKED} before the disconnect`);
    assert.equal(s.closed.reason, 'io server disconnect');
    took.push(s.closed.at - start);
  }
  for (const ms of took) assert.ok(ms < 1000, `closed after ${ms} ms (limit 1000): ${took}`);
  console.log(`the ban closed the sockets after ${took.join(', ')} ms`);
  assert.ok(other.connected, 'other users stay connected');

  const login = await d.api('POST', '/auth/login', { body: { username: user.username, password: user.password } });
  assertError(login, 403, 'banned');
  const refresh = await d.api('POST', '/auth/refresh', { body: { refreshToken: user.refreshToken } });
  assertError(refresh, 403, 'banned');
  await assert.rejects(d.connect(0, user.accessToken, { label: 'banned again' }),
    (e) => e.message === 'banned');
  // The ban's revocation carries its reason: the old access token gets 403 banned too.
  assertError(await d.api('GET', '/users/me', { token: user.accessToken }), 403, 'banned');
  const event = await adminEvent('ban_user', user.user.id);
  assert.equal(event.data.details.reason, 'spam');

  assert.equal((await d.api('DELETE', `/admin/users/${user.user.id}/ban`, { token: mod.accessToken })).status, 204);
  const back = await d.api('POST', '/auth/login', { body: { username: user.username, password: user.password } });
  assert.equal(back.status, 200, JSON.stringify(back.body));
  await adminEvent('unban_user', user.user.id);
});

d.test('a moderator delete reaches the members as a deleted event showing the moderator', async () => {
  const mod = await admin();
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createGroup(alice.accessToken, 'moderated', [bob.user.id]);
  const [aliceSocket] = await d.connectSockets(alice, [0]);
  const [bobSocket] = await d.connectSockets(bob, [1]);
  const sent = await d.send(bob.accessToken, chat.id, 'spam spam spam');
  const created = await waitEvent(aliceSocket, EV.NEW, (p) => p.message?.clientMessageId === sent.clientMessageId);
  const messageId = created.payload.message.id;

  const res = await d.api('DELETE', `/admin/messages/${messageId}`, { token: mod.accessToken });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  for (const s of [aliceSocket, bobSocket]) {
    const got = await waitEvent(s, DELETED, (p) => p.messageId === messageId);
    assert.equal(got.payload.chatId, chat.id);
    assert.equal(got.payload.deletedBy, 'moderator', JSON.stringify(got.payload));
  }
  const page = await d.history(alice.accessToken, chat.id);
  const tomb = page.messages.find((m) => m.id === messageId);
  assert.equal(tomb.content, '');
  assert.equal(tomb.deletedBy, 'moderator');
  assert.ok(tomb.deletedAt);
  const event = await adminEvent('delete_message', messageId);
  assert.equal(event.data.targetType, 'message');
  assert.equal(event.data.details.chatId, chat.id);
});
