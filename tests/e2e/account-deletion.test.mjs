// Account deletion (contract v3 "Accounts and safety": DELETE /users/me {password} →
// 204), split mode against real PostgreSQL, Redis, RabbitMQ and the S3 stand-in
// (S3_TEST_ENDPOINT overrides 127.0.0.1:9090), with real socket.io-client sockets:
// the deleted user's socket gets `auth.revoked` {reason: "account_deleted"} and is
// closed within 1 s; a group member gets `chat.updated` without the user and the
// integration exchange `member.removed`; history keeps the messages, from
// "Deleted user"; the upload is gone from storage; the direct chat refuses sends; the
// username is taken during ACCOUNT_USERNAME_HOLD and registers again after it.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import amqplib from 'amqplib';

import { PASSWORD, uniqueResourceName, useDeployment, waitFor } from './harness.mjs';
import { waitEvent } from './realtime-helpers.mjs';

const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = uniqueResourceName().replaceAll('_', '-');
const HOLD_SECS = 4;

const d = useDeployment({
  mode: 'split',
  gateways: 1,
  env: {
    S3_ENDPOINT: S3,
    S3_BUCKET: BUCKET,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'e2e',
    S3_SECRET_ACCESS_KEY: 'e2e-secret',
    ACCOUNT_USERNAME_HOLD: String(HOLD_SECS),
    // Registering the held name is polled until the hold is over.
    RATE_LIMIT_AUTH_USERNAME_MAX: '100',
  },
});

/** A queue on the deployment's vhost bound to every integration event; `events` fills. */
async function integrationEvents() {
  const ep = d.infra.endpoints;
  const url = `amqp://${encodeURIComponent(ep.rabbitUser)}:${encodeURIComponent(ep.rabbitPassword)}`
    + `@${ep.rabbitHost}:${ep.rabbitPort}/${encodeURIComponent(d.vhost)}`;
  const conn = await amqplib.connect(url);
  conn.on('error', () => {});
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, 'chat.integrations', '#');
  const events = [];
  await ch.consume(queue, (m) => {
    if (m) events.push({ key: m.fields.routingKey, body: JSON.parse(m.content.toString()) });
  }, { noAck: true });
  return { events, close: () => conn.close().catch(() => {}) };
}

/** Announces, PUTs and sends a file into `chatId`; resolves the upload id. */
async function sendFile(account, chatId) {
  const bytes = Buffer.from(`notes ${randomUUID()}\n`);
  const announced = await d.api('POST', '/uploads', {
    token: account.accessToken,
    body: { fileName: 'notes.txt', contentType: 'text/plain', size: bytes.length },
  });
  assert.equal(announced.status, 201, JSON.stringify(announced.body));
  const put = await fetch(announced.body.uploadUrl,
    { method: 'PUT', headers: announced.body.headers, body: bytes });
  assert.equal(put.status, 200, `presigned PUT: ${put.status}`);
  const sent = await d.api('POST', `/chats/${chatId}/messages`, {
    token: account.accessToken,
    body: { content: 'see the notes', clientMessageId: randomUUID(), attachments: [announced.body.id] },
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  return announced.body.id;
}

d.test('deleting an account closes its socket, leaves its groups and keeps its messages from "Deleted user"', async () => {
  const made = await fetch(`${S3}/${BUCKET}`, { method: 'PUT' });
  assert.ok(made.ok, `creating bucket ${BUCKET} on ${S3}: ${made.status}`);
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(bob.accessToken, 'team', [alice.user.id, carol.user.id]);
  const direct = await d.createDirect(alice.accessToken, bob.user.id);
  const upload = await sendFile(alice, group.id);
  await d.send(alice.accessToken, direct.id, 'hi bob');
  const withFile = await waitFor(async () => (await d.history(carol.accessToken, group.id)).messages
    .find((m) => m.attachments?.[0]?.id === upload), 10_000, { message: 'the file in history' });
  const url = withFile.attachments[0].url;
  assert.equal((await fetch(url)).status, 200, 'the upload downloads before the deletion');
  await waitFor(async () => (await d.history(bob.accessToken, direct.id)).messages.length === 1, 10_000);

  const [aliceSocket] = await d.connectSockets(alice, [0]);
  aliceSocket.closed = null;
  aliceSocket.socket.on('disconnect', (reason) => { aliceSocket.closed = { reason, at: Date.now() }; });
  const [carolSocket] = await d.connectSockets(carol, [0]);
  const integrations = await integrationEvents();
  let start;
  try {
    const bare = await d.api('DELETE', '/users/me', { token: alice.accessToken });
    assert.deepEqual([bare.status, bare.body?.code], [400, 'validation_failed'], JSON.stringify(bare.body));
    const wrong = await d.api('DELETE', '/users/me',
      { token: alice.accessToken, body: { password: 'not-the-password' } });
    assert.deepEqual([wrong.status, wrong.body?.code], [401, 'unauthorized'], JSON.stringify(wrong.body));
    assert.ok(aliceSocket.connected, 'nothing happened yet');

    start = Date.now();
    const res = await d.api('DELETE', '/users/me', { token: alice.accessToken, body: { password: PASSWORD } });
    assert.equal(res.status, 204, JSON.stringify(res.body));

    // The socket gets auth.revoked and is closed by the server within 1 s.
    await waitFor(() => aliceSocket.closed !== null, 5000, { message: 'alice: not disconnected' });
    const revoked = aliceSocket.events.find((e) => e.event === 'auth.revoked');
    assert.deepEqual(revoked?.payload, { reason: 'account_deleted' });
    assert.equal(aliceSocket.closed.reason, 'io server disconnect');
    const took = aliceSocket.closed.at - start;
    assert.ok(took < 1000, `closed after ${took} ms (limit 1000)`);
    const me = await d.api('GET', '/users/me', { token: alice.accessToken });
    assert.deepEqual([me.status, me.body?.code], [401, 'session_revoked']);
    const login = await d.api('POST', '/auth/login', { body: { username: alice.username, password: PASSWORD } });
    assert.equal(login.status, 401, JSON.stringify(login.body));
    const refresh = await d.api('POST', '/auth/refresh', { body: { refreshToken: alice.refreshToken } });
    assert.equal(refresh.status, 401, JSON.stringify(refresh.body));

    // A group member learns the user left: chat.updated live, member.removed for integrations.
    const { payload } = await waitEvent(carolSocket, 'chat.updated', (p) => p?.chat?.id === group.id
      && !p.chat.participants.some((x) => x.userId === alice.user.id), { timeoutMs: 10_000 });
    assert.ok(payload.chat.participants.some((x) => x.userId === carol.user.id));
    const removed = await waitFor(() => integrations.events.find((e) => e.key === 'member.removed'),
      10_000, { message: 'no member.removed on the integration exchange' });
    assert.equal(removed.body.type, 'member.removed');
    assert.deepEqual([removed.body.chatId, removed.body.data.userId], [group.id, alice.user.id]);
  } finally {
    await integrations.close();
  }

  // History keeps the messages, from the same id, now "Deleted user"; the file is gone.
  const kept = (await d.history(carol.accessToken, group.id)).messages.find((m) => m.id === withFile.id);
  assert.equal(kept.senderId, alice.user.id);
  assert.equal(kept.content, 'see the notes');
  assert.deepEqual(kept.attachments, []);
  const user = await d.api('GET', `/users/${alice.user.id}`, { token: carol.accessToken });
  assert.equal(user.status, 200);
  assert.equal(user.body.displayName, 'Deleted user');
  assert.equal((await fetch(url)).status, 404, 'the object is gone from storage');

  // The direct chat stays readable and refuses sends.
  const dm = (await d.history(bob.accessToken, direct.id)).messages;
  assert.deepEqual(dm.map((m) => [m.senderId, m.content]), [[alice.user.id, 'hi bob']]);
  const refused = await d.sendRaw(bob.accessToken, direct.id, 'still there?');
  assert.deepEqual([refused.status, refused.body?.code], [403, 'blocked']);

  // The username is held for ACCOUNT_USERNAME_HOLD, then registers again.
  const again = { username: alice.username, password: 'another-pass-1' };
  const held = await d.api('POST', '/auth/register', { body: again });
  const heldAfter = Date.now() - start;
  assert.ok(heldAfter < HOLD_SECS * 1000, `the check ran ${heldAfter} ms after the deletion, past the hold`);
  assert.deepEqual([held.status, held.body?.code], [409, 'conflict'], JSON.stringify(held.body));
  const fresh = await waitFor(async () => {
    const r = await d.api('POST', '/auth/register', { body: again });
    return r.status === 201 ? r.body : null;
  }, (HOLD_SECS + 10) * 1000, { intervalMs: 500, message: 'the username never became free' });
  assert.notEqual(fresh.user.id, alice.user.id);
  assert.ok(Date.now() - start >= HOLD_SECS * 1000, 'not before the hold ended');
  const back = await d.api('POST', '/auth/login', { body: again });
  assert.equal(back.status, 200, JSON.stringify(back.body));
});
