// Single-flight token refresh: one getToken() per refresh however many callers ask, no
// refresh for a token that was already replaced, refresh before auth.expiring and on 401.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { CourierClient, TokenManager } from '../dist/index.js';
import { baseRoutes, makeClient, settle, until } from './fakes.mjs';

test('concurrent refreshes share one getToken() call', async () => {
  let n = 0;
  let release;
  const gate = new Promise((r) => { release = r; });
  const tm = new TokenManager(async () => { n += 1; await gate; return `t${n}`; });
  const all = Promise.all([tm.refresh(), tm.refresh(), tm.current(), tm.refresh('x')]);
  release();
  assert.deepEqual(await all, ['t1', 't1', 't1', 't1']);
  assert.equal(n, 1);
});

test('a refresh asked for a stale token that was already replaced makes no call', async () => {
  let n = 0;
  const tm = new TokenManager(async () => `t${++n}`);
  assert.equal(await tm.current(), 't1');
  assert.equal(await tm.refresh('t1'), 't2');
  assert.equal(await tm.refresh('t1'), 't2', 'the second caller with the same stale token');
  assert.equal(n, 2);
  assert.equal(await tm.refresh('t2'), 't3');
});

test('a failed refresh rejects every waiter and the next one tries again', async () => {
  let n = 0;
  const tm = new TokenManager(async () => { n += 1; if (n === 1) throw new Error('down'); return 'ok'; });
  const r = await Promise.allSettled([tm.refresh(), tm.refresh()]);
  assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected']);
  assert.equal(await tm.refresh(), 'ok');
  assert.equal(n, 2);
});

/** A JWT-shaped token expiring in `secs` (only `exp` matters to the SDK). */
function jwt(secs, n) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64({ exp: Date.now() / 1000 + secs, n })}.sig`;
}

test('auth.expiring: one refresh at half the life left, handed over with auth.refresh; no storm', async () => {
  let n = 0;
  const issued = [];
  const { client, transport } = await makeClient(CourierClient, {
    getToken: async () => { n += 1; const t = jwt(2, n); issued.push(t); return t; },
  });
  const connected = client.connect();
  await until('opened', () => transport().opens.length);
  transport().acks['auth.refresh'] = () => {
    // The server re-arms and may warn about the new short token before its ack arrives.
    transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 2000).toISOString() });
    return { status: 'ok', expiresAt: new Date(Date.now() + 2000).toISOString() };
  };
  transport().accept(true);
  await connected;
  const t0 = Date.now();
  transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 2000).toISOString() });
  transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 2000).toISOString() });
  assert.equal(n, 1, 'no refresh at once for a 2 s token: it waits for half its life');
  await until('first auth.refresh', () => transport().emits.some((e) => e.name === 'auth.refresh'), 3000);
  assert.ok(Date.now() - t0 >= 900, `refreshed after ${Date.now() - t0} ms`);
  assert.deepEqual(transport().emits.filter((e) => e.name === 'auth.refresh').map((e) => e.payload), [{ token: issued[1] }]);
  await until('second auth.refresh (the timer re-armed from the ack)', () =>
    transport().emits.filter((e) => e.name === 'auth.refresh').length === 2, 3000);
  assert.ok(n <= 4, `getToken() called ${n} times`);
  assert.equal(client.state, 'connected');
  client.disconnect();
});

test('auth.expiring for a long-lived token refreshes well before the expiry, once for doubled warnings', async () => {
  // The test owns the clock (every timer of the client is a mock one, so none outlives
  // the test): both warnings' timers come due together, deterministically.
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  try {
    let n = 0;
    const { client, transport } = await makeClient(CourierClient, { getToken: async () => jwt(3600, ++n) });
    const connected = client.connect();
    await settle();
    assert.equal(transport().opens.length, 1);
    transport().accept(true);
    await connected;
    // The server warns 60 s ahead: refresh at half of that at the latest, i.e. within 30 s;
    // shorter here: a token that has 2.5 s left.
    transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 2500).toISOString() });
    transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 2500).toISOString() });
    mock.timers.tick(2500);
    await settle();
    assert.equal(transport().emits.filter((e) => e.name === 'auth.refresh').length, 1);
    assert.equal(n, 2);
    client.disconnect();
  } finally {
    mock.timers.reset();
  }
});

test('parallel REST calls answered 401 refresh the token once and retry', async () => {
  let n = 0;
  const routes = baseRoutes({
    'GET /users/:id': (req) => (req.headers.authorization === 'Bearer tok-1'
      ? { status: 401, body: { statusCode: 401, code: 'unauthorized', message: 'expired' } }
      : { body: { id: req.path.split('/').pop() } }),
  });
  const { client } = await makeClient(CourierClient, { routes, getToken: async () => `tok-${++n}` });
  const got = await Promise.all([1, 2, 3, 4].map((i) => client.request('GET', `/users/u${i}`)));
  assert.deepEqual(got.map((u) => u.id), ['u1', 'u2', 'u3', 'u4']);
  assert.equal(n, 2);
});

test('connect_error "unauthorized" refreshes the token and reconnects with it', async () => {
  let n = 0;
  const { client, transport } = await makeClient(CourierClient, { getToken: async () => `tok-${++n}` });
  const connected = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().h.onFail('unauthorized');
  await until('reopened', () => transport().opens.length === 2);
  assert.deepEqual(transport().opens.map((o) => o.token), ['tok-1', 'tok-2']);
  transport().accept(false);
  await connected;
  assert.equal(client.state, 'connected');
  client.disconnect();
});
