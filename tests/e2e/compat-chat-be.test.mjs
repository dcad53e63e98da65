// The chat-be compatibility profile (API_COMPAT=chat-be on every process of a split
// deployment). The client below is written only from the reference backend's
// documented surface (../../../shared/reference-backend.md): plain fetch for REST with
// the {success, data, ...} envelope, e-mail accounts, participantUserIds, page/take
// history, and a real socket.io-client on namespace /chat with `auth.token`.
// register → login → create chat → socket → send → receive → history page; logout
// revoking the session (its socket closed with `auth.revoked`, its token refused).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { io } from 'socket.io-client';

import { useDeployment } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 1, env: { API_COMPAT: 'chat-be' } });

/** A reference-backend call: the parsed envelope and the HTTP status. */
async function call(method, path, { token, body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${d.apiUrl}${path}`,
    { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

function assertEnvelope(res, status, path) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.success, true);
  assert.equal(res.body.statusCode, status);
  assert.equal(res.body.message, 'success');
  assert.equal(res.body.path, path);
  assert.ok(!Number.isNaN(Date.parse(res.body.timestamp)));
}

async function signUp(name) {
  const email = `${name}.${randomUUID().slice(0, 8)}@example.com`;
  const password = 'secret1';
  const reg = await call('POST', '/auth/register', { body: { email, password } });
  assertEnvelope(reg, 200, '/auth/register');
  assert.equal(reg.body.data.email, email);
  assert.equal(reg.body.data.role, 'VISITOR');
  for (const k of ['id', 'createdAt', 'updatedAt']) assert.ok(reg.body.data[k], k);
  const login = await call('POST', '/auth/login', { body: { email, password } });
  assertEnvelope(login, 200, '/auth/login');
  const { user, accessToken } = login.body.data;
  assert.equal(user.id, reg.body.data.id);
  assert.equal(typeof accessToken.token, 'string');
  assert.equal(typeof accessToken.expiresIn, 'number');
  return { id: user.id, email, token: accessToken.token };
}

function openSocket(token) {
  const socket = io(`${d.gatewayUrls[0]}/chat`, { auth: { token }, transports: ['websocket'], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

function nextEvent(socket, name, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
    socket.once(name, (payload) => { clearTimeout(timer); resolve(payload); });
  });
}

/** `statuses`: what `status` may be; a message already on its recipient's socket may be DELIVERED. */
function assertReferenceMessage(m, { chatId, senderId, content, sequence }, statuses = ['SENT']) {
  assert.equal(m.chatId, chatId);
  assert.equal(m.senderId, senderId);
  assert.equal(m.content, content);
  assert.equal(m.messageType, 'TEXT');
  assert.ok(statuses.includes(m.status), `status ${m.status}, expected one of ${statuses}`);
  assert.equal(m.sequence, sequence);
  for (const k of ['id', 'createdAt', 'updatedAt', 'sentAt', 'clientMessageId']) assert.ok(m[k], k);
}

d.test('a reference frontend works unchanged: register, login, chat, socket, send, receive, history', async () => {
  const ann = await signUp('ann');
  const bob = await signUp('bob');
  const dup = await call('POST', '/auth/register', { body: { email: ann.email, password: 'secret1' } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.success, false);
  assert.equal(dup.body.message, 'error.unique.email');

  const me = await call('GET', '/auth/me', { token: ann.token });
  assertEnvelope(me, 200, '/auth/me');
  assert.equal(me.body.data.id, ann.id);

  const created = await call('POST', '/chats', { token: ann.token, body: { participantUserIds: [bob.id] } });
  assertEnvelope(created, 201, '/chats');
  const chat = created.body.data;
  assert.equal(chat.isGroup, false);
  assert.equal(chat.name, null);
  const again = await call('POST', '/chats', { token: bob.token, body: { participantUserIds: [ann.id] } });
  assert.equal(again.body.data.id, chat.id, 'the same direct chat again');
  const rooms = await call('GET', '/chats/room-ids', { token: bob.token });
  assertEnvelope(rooms, 200, '/chats/room-ids');
  assert.deepEqual(rooms.body.data, [chat.id]);

  const bobSocket = await openSocket(bob.token);
  const annSocket = await openSocket(ann.token);
  try {
    const received = nextEvent(bobSocket, 'chat.message.new');
    const saved = nextEvent(annSocket, 'chat.message.saved');
    const clientMessageId = randomUUID();
    const path = `/chats/${chat.id}/messages`;
    const sent = await call('POST', path, { token: ann.token, body: { content: 'hello bob', clientMessageId } });
    assertEnvelope(sent, 202, path);
    assert.equal(sent.body.data.status, 'queued');
    assert.equal(sent.body.data.clientMessageId, clientMessageId);
    assert.ok(sent.body.data.brokerMessageId);

    const expected = { chatId: chat.id, senderId: ann.id, content: 'hello bob', sequence: 1 };
    const event = await received;
    assert.equal(event.chatId, chat.id);
    assertReferenceMessage(event.message, expected);
    assert.equal(event.message.clientMessageId, clientMessageId);
    assertReferenceMessage((await saved).message, expected);

    // A second message without clientMessageId: the server makes one up.
    const second = nextEvent(bobSocket, 'chat.message.new');
    const sent2 = await call('POST', path, { token: ann.token, body: { content: 'again' } });
    assert.equal(sent2.status, 202);
    assert.ok(sent2.body.data.clientMessageId);
    assertReferenceMessage((await second).message, { ...expected, content: 'again', sequence: 2 });

    const bad = await call('POST', path, { token: ann.token, body: { content: 'x', unknown: true } });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.success, false);

    const page = await call('GET', `${path}?page=1&take=1&order=DESC`, { token: bob.token });
    assertEnvelope(page, 200, `${path}?page=1&take=1&order=DESC`);
    assert.equal(page.body.data.length, 1);
    // Bob's socket got it: the delivered mark (flushed every 250 ms) may already be stored.
    assertReferenceMessage(page.body.data[0], { ...expected, content: 'again', sequence: 2 }, ['SENT', 'DELIVERED']);
    assert.deepEqual(page.body.meta,
      { page: 1, take: 1, itemCount: 2, pageCount: 2, hasPreviousPage: false, hasNextPage: true });
    const asc = await call('GET', `${path}?page=1&take=10`, { token: bob.token });
    assert.deepEqual(asc.body.data.map((m) => m.content), ['hello bob', 'again']);

    const chats = await call('GET', '/chats?page=1&take=10&order=DESC', { token: bob.token });
    assertEnvelope(chats, 200, '/chats?page=1&take=10&order=DESC');
    assert.equal(chats.body.meta.itemCount, 1);
    assert.equal(chats.body.data[0].id, chat.id);
    assert.equal(chats.body.data[0].lastMessage.content, 'again');
    assert.equal(chats.body.data[0].lastMessage.messageType, 'TEXT');
    assert.deepEqual(chats.body.data[0].participants.map((p) => p.id).sort(), [ann.id, bob.id].sort());
  } finally {
    annSocket.close();
    bobSocket.close();
  }
});

d.test('logout revokes the session: {success: true}, its socket gets auth.revoked and closes, its token 401', async () => {
  const ann = await signUp('leaver');
  // A second device: another login of the same account, which stays signed in.
  const other = await call('POST', '/auth/login', { body: { email: ann.email, password: 'secret1' } });
  assertEnvelope(other, 200, '/auth/login');
  const laptop = other.body.data.accessToken.token;
  const socket = await openSocket(ann.token);
  const laptopSocket = await openSocket(laptop);
  try {
    const revoked = nextEvent(socket, 'auth.revoked', 5000);
    const closed = nextEvent(socket, 'disconnect', 5000);
    const start = Date.now();
    const out = await call('POST', '/auth/logout', { token: ann.token });
    assertEnvelope(out, 200, '/auth/logout');
    assert.deepEqual(out.body.data, { success: true }, 'the reference backend\'s body');
    assert.deepEqual(await revoked, { reason: 'logout' });
    assert.equal(await closed, 'io server disconnect');
    assert.ok(Date.now() - start <= 1000, `closed ${Date.now() - start} ms after the logout`);

    const me = await call('GET', '/auth/me', { token: ann.token });
    assert.equal(me.status, 401, JSON.stringify(me.body));
    assert.equal(me.body.success, false);
    assert.equal(me.body.errorCode, 'session_revoked');
    await assert.rejects(openSocket(ann.token), (e) => e.message === 'session_revoked', 'the handshake refuses the token');

    const still = await call('GET', '/auth/me', { token: laptop });
    assertEnvelope(still, 200, '/auth/me');
    assert.ok(laptopSocket.connected, 'the other session\'s socket stays open');
  } finally {
    socket.close();
    laptopSocket.close();
  }
});
