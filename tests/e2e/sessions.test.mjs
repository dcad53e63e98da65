// Sessions (contract v3 "Accounts and safety"): one user signed in on two devices, with
// sockets on both gateways and an SSE stream. Revoking a session sends `auth.revoked`
// to that session's connections on every gateway and closes them within 1 s, while the
// other session's stay; logout-all closes everything; a password change revokes the
// other sessions; a revoked session's access token gets 401 `session_revoked` and its
// refresh token no longer refreshes.

import assert from 'node:assert/strict';

import { PASSWORD, useDeployment, waitFor } from './harness.mjs';
import { SseClient } from './realtime.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });
const REVOKED = 'auth.revoked';

/** Signs `account` in on another device; resolves its login answer. */
async function login(account, deviceName) {
  const res = await d.api('POST', '/auth/login',
    { body: { username: account.username, password: account.password ?? PASSWORD, deviceName } });
  assert.equal(res.status, 200, `login ${deviceName}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A socket on gateway `g` that records when it was disconnected and why. */
async function socket(g, token, label) {
  const client = await d.connect(g, token, { label });
  client.closed = null;
  client.socket.on('disconnect', (reason) => { client.closed = { reason, at: Date.now() }; });
  return client;
}

/** An open SSE stream on gateway `g` that records `auth.revoked`. */
async function stream(g, token, label) {
  const client = new SseClient(d.gateway(g), { token, label, names: [REVOKED] });
  d.clients.add(client);
  await client.opened();
  return client;
}

/** Waits until `client` got `auth.revoked` and was closed; returns ms since `start`. */
async function revokedWithin(client, start, reason) {
  await waitFor(() => client.closed !== null, 5000, { message: `${client.label}: not disconnected` });
  const got = client.events.find((e) => e.event === REVOKED);
  assert.ok(got, `${client.label}: ${REVOKED} before the disconnect`);
  assert.deepEqual(got.payload, { reason }, `${client.label}: payload`);
  assert.equal(client.closed.reason, 'io server disconnect', `${client.label}: closed by the server`);
  return client.closed.at - start;
}

async function status(token) {
  return d.api('GET', '/users/me', { token });
}

async function sessions(token) {
  const res = await d.api('GET', '/auth/sessions', { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

d.test('revoking one session closes its sockets on both gateways and its SSE stream within 1 s', async () => {
  const laptop = await d.register('sessions');
  const phone = await login(laptop, 'Phone');
  const list = await sessions(laptop.accessToken);
  assert.equal(list.length, 2);
  const phoneSession = list.find((s) => s.deviceName === 'Phone');
  assert.ok(phoneSession && !phoneSession.current, JSON.stringify(list));

  const phone1 = await socket(0, phone.accessToken, 'phone@gw1');
  const phone2 = await socket(1, phone.accessToken, 'phone@gw2');
  const laptop2 = await socket(1, laptop.accessToken, 'laptop@gw2');
  const phoneSse = await stream(0, phone.accessToken, 'phone sse@gw1');

  const start = Date.now();
  const res = await d.api('DELETE', `/auth/sessions/${phoneSession.id}`, { token: laptop.accessToken });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  const took = await Promise.all([phone1, phone2].map((c) => revokedWithin(c, start, 'session_revoked')));
  await waitFor(() => phoneSse.received(REVOKED).length === 1, 5000, { message: 'phone sse: no auth.revoked' });
  const sseTook = phoneSse.events.find((e) => e.event === REVOKED).at - start;
  assert.deepEqual(phoneSse.received(REVOKED)[0], { reason: 'session_revoked' });
  // The stream ended; the EventSource's reconnect with the revoked token is refused.
  const err = await phoneSse.failed(5000);
  assert.equal(err?.code, 401, `phone sse reconnect: ${JSON.stringify(err)}`);
  for (const ms of [...took, sseTook]) assert.ok(ms < 1000, `closed after ${ms} ms (limit 1000): ${took}, sse ${sseTook}`);
  console.log(`revocation closed sockets after ${took.join(', ')} ms, the SSE stream after ${sseTook} ms`);

  // The other session's socket stays and still works.
  assert.ok(laptop2.connected, 'the laptop socket stays');
  assert.equal(laptop2.events.filter((e) => e.event === REVOKED).length, 0);
  const ack = await laptop2.ack('chat.sync', { chats: {} });
  assert.equal(ack.status, 'ok', JSON.stringify(ack));

  const me = await status(phone.accessToken);
  assert.equal(me.status, 401);
  assert.equal(me.body.code, 'session_revoked');
  assert.equal((await status(laptop.accessToken)).status, 200);
  const refresh = await d.api('POST', '/auth/refresh', { body: { refreshToken: phone.refreshToken } });
  assert.equal(refresh.status, 401, JSON.stringify(refresh.body));
  await assert.rejects(d.connect(0, phone.accessToken, { label: 'phone again' }),
    (e) => e.message === 'session_revoked');
});

d.test('logout-all closes every socket of every session', async () => {
  const laptop = await d.register('logoutall');
  const phone = await login(laptop, 'Phone');
  const clients = [
    await socket(0, laptop.accessToken, 'laptop@gw1'),
    await socket(1, laptop.accessToken, 'laptop@gw2'),
    await socket(0, phone.accessToken, 'phone@gw1'),
    await socket(1, phone.accessToken, 'phone@gw2'),
  ];
  const start = Date.now();
  const res = await d.api('POST', '/auth/logout-all', { token: phone.accessToken });
  assert.equal(res.status, 204);
  const took = await Promise.all(clients.map((c) => revokedWithin(c, start, 'logout_all')));
  for (const ms of took) assert.ok(ms < 1000, `closed after ${ms} ms: ${took}`);
  for (const t of [laptop.accessToken, phone.accessToken]) {
    assert.equal((await status(t)).body.code, 'session_revoked');
  }
});

d.test('a password change revokes the other sessions and keeps the caller\'s', async () => {
  const laptop = await d.register('password');
  const phone = await login(laptop, 'Phone');
  const phoneSocket = await socket(1, phone.accessToken, 'phone@gw2');
  const laptopSocket = await socket(0, laptop.accessToken, 'laptop@gw1');
  const wrong = await d.api('POST', '/auth/password',
    { token: laptop.accessToken, body: { currentPassword: 'not-the-password', newPassword: 'new-password-1' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.code, 'unauthorized');
  const start = Date.now();
  const res = await d.api('POST', '/auth/password',
    { token: laptop.accessToken, body: { currentPassword: PASSWORD, newPassword: 'new-password-1' } });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  const ms = await revokedWithin(phoneSocket, start, 'password_changed');
  assert.ok(ms < 1000, `closed after ${ms} ms`);
  assert.ok(laptopSocket.connected, 'the caller\'s socket stays');
  assert.equal((await status(phone.accessToken)).body.code, 'session_revoked');
  assert.equal((await status(laptop.accessToken)).status, 200);
  const again = await d.api('POST', '/auth/login',
    { body: { username: laptop.username, password: 'new-password-1' } });
  assert.equal(again.status, 200);
});

d.test('logout revokes the current session only', async () => {
  const laptop = await d.register('logout');
  const phone = await login(laptop, 'Phone');
  const phoneSocket = await socket(0, phone.accessToken, 'phone@gw1');
  const laptopSocket = await socket(1, laptop.accessToken, 'laptop@gw2');
  const start = Date.now();
  assert.equal((await d.api('POST', '/auth/logout', { token: phone.accessToken })).status, 204);
  const ms = await revokedWithin(phoneSocket, start, 'logout');
  assert.ok(ms < 1000, `closed after ${ms} ms`);
  assert.ok(laptopSocket.connected);
  const left = await sessions(laptop.accessToken);
  assert.deepEqual(left.map((s) => s.current), [true], JSON.stringify(left));
});
