// Single-flight token refresh: one getToken() per refresh however many callers ask, no
// refresh for a token that was already replaced, refresh before auth.expiring and on 401.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CourierClient, TokenManager } from '../dist/index.js';
import { baseRoutes, makeClient, until } from './fakes.mjs';

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

test('auth.expiring: one getToken() and auth.refresh with the new token on the socket', async () => {
  let n = 0;
  const { client, transport } = await makeClient(CourierClient, { getToken: async () => `tok-${++n}` });
  const connected = client.connect();
  await until('opened', () => transport().opens.length);
  transport().accept(true);
  await connected;
  transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 60_000).toISOString() });
  transport().event('auth.expiring', { expiresAt: new Date(Date.now() + 60_000).toISOString() });
  await until('auth.refresh sent', () => transport().emits.some((e) => e.name === 'auth.refresh'));
  const refreshes = transport().emits.filter((e) => e.name === 'auth.refresh');
  assert.equal(n, 2, 'getToken: once at connect, once for the (doubled) expiring');
  assert.deepEqual(refreshes.map((e) => e.payload), [{ token: 'tok-2' }]);
  client.disconnect();
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
