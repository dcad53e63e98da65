// Extras: the SSE transport (GET /events with ?token= and lastEventId resume; actions over
// REST; re-sync over REST after recovered:false) with a fake EventSource, and the upload helper.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CourierClient } from '../dist/index.js';
import { CHAT, ME, baseRoutes, chat, fakeFetch, msg, until } from './fakes.mjs';

/** A fake EventSource: the test opens it, sends named events with ids, or fails it. */
class FakeEventSource {
  static all = [];
  constructor(url) { this.url = new URL(url); this.listeners = {}; this.closed = false; FakeEventSource.all.push(this); }
  addEventListener(name, fn) { (this.listeners[name] ??= []).push(fn); }
  close() { this.closed = true; }
  open() { this.onopen?.(); }
  send(name, payload, id) {
    for (const fn of this.listeners[name] ?? []) fn({ data: JSON.stringify(payload), lastEventId: id ?? '' });
  }
  fail(code) { this.onerror?.({ code }); }
}

test('SSE: ?token=, events into the store, resume with lastEventId, re-sync over REST', async () => {
  FakeEventSource.all = [];
  const after = [];
  const routes = baseRoutes({}, {
    chats: [chat({ lastSequence: 1 })],
    history: (req) => {
      if (req.query.after !== undefined) { after.push(req.query.after); return { messages: [msg(2), msg(3)], hasMore: false }; }
      return { messages: [msg(1)], hasMore: false };
    },
  });
  const client = new CourierClient({ baseUrl: 'http://courier.test', gatewayUrl: 'http://gw.test', transport: 'sse',
    eventSource: FakeEventSource, fetch: fakeFetch(routes), getToken: async () => 'tok', window: null, backoff: { minMs: 1, maxMs: 2 } });
  const p = client.connect();
  await until('stream opened', () => FakeEventSource.all.length === 1);
  const es = FakeEventSource.all[0];
  assert.equal(es.url.origin, 'http://gw.test');
  assert.equal(es.url.pathname, '/events');
  assert.equal(es.url.searchParams.get('token'), 'tok');
  assert.equal(es.url.searchParams.has('lastEventId'), false);
  es.open();
  es.send('session.recovered', { recovered: false, offset: '1-0' });
  await p;
  assert.equal(client.transport, 'sse');
  await client.loadHistory(CHAT);
  es.send('chat.message.new', { offset: '2-0', chatId: CHAT, message: msg(2) }, '2-0');
  assert.deepEqual(client.store.messages(CHAT).map((m) => m.sequence), [1, 2]);
  await client.setTyping(CHAT, true); // a no-op on SSE, never throws

  es.fail();
  await until('reopened', () => FakeEventSource.all.length === 2);
  const es2 = FakeEventSource.all[1];
  assert.equal(es2.url.searchParams.get('lastEventId'), '2-0');
  es2.open();
  es2.send('session.recovered', { recovered: false, offset: '9-0' });
  await until('connected', () => client.state === 'connected');
  assert.deepEqual(after, ['0', '3'], 'the re-sync re-reads the held range, then asks what came after');
  assert.deepEqual(client.store.messages(CHAT).map((m) => m.sequence), [1, 2, 3]);
  client.disconnect();
  assert.ok(es2.closed);
});

test('upload: POST /uploads announces the file, then a PUT with its headers; resolves the id', async () => {
  const routes = baseRoutes({
    'POST /uploads': (req) => ({ status: 201, body: { id: 'up-1', uploadUrl: 'http://s3.test/bucket/key?sig=1', method: 'PUT',
      headers: { 'Content-Type': req.body.contentType }, expiresAt: 'x' } }),
    'PUT /bucket/key': () => ({ status: 200 }),
  });
  const fetch = fakeFetch(routes);
  const client = new CourierClient({ baseUrl: 'http://courier.test', fetch, getToken: async () => 'tok', window: null });
  const id = await client.upload({ name: 'a.txt', type: 'text/plain', data: new TextEncoder().encode('hello') });
  assert.equal(id, 'up-1');
  const [announce, put] = fetch.calls;
  assert.deepEqual(announce.body, { fileName: 'a.txt', contentType: 'text/plain', size: 5 });
  assert.equal(announce.headers.authorization, 'Bearer tok');
  assert.equal(put.method, 'PUT');
  assert.deepEqual(put.headers, { 'Content-Type': 'text/plain' });
  assert.equal(new TextDecoder().decode(put.body), 'hello');
  const blobId = await client.upload(new Blob(['xy'], { type: 'image/png' }));
  assert.equal(blobId, 'up-1');
  assert.deepEqual(fetch.calls[2].body, { fileName: 'file', contentType: 'image/png', size: 2 });
});

test('CourierError carries the contract error shape', async () => {
  const routes = { 'GET /chats/:id': () => ({ status: 403, body: { statusCode: 403, error: 'Forbidden', code: 'forbidden', message: 'not a participant' } }) };
  const client = new CourierClient({ baseUrl: 'http://courier.test', fetch: fakeFetch(routes), getToken: async () => 'tok', window: null });
  await assert.rejects(client.request('GET', `/chats/${CHAT}`), (err) => err.name === 'CourierError'
    && err.status === 403 && err.code === 'forbidden' && err.message === 'not a participant');
  assert.equal(ME.length, 36);
});
