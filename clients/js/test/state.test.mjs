// The connection state machine: disconnected → connecting → connected, reconnect with the
// last offset after a drop, re-sync (GET /chats + chat.sync) after recovered:false, the
// window's offline/online, fatal revocation.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { CourierClient } from '../dist/index.js';
import { CHAT, baseRoutes, chat, makeClient, msg, settle, until } from './fakes.mjs';

test('connect: connecting, then connected after session.recovered; connect() resolves then', async () => {
  const { client, transport } = await makeClient(CourierClient);
  const states = [];
  client.on('state', (s) => states.push(s));
  let resolved = false;
  const p = client.connect().then(() => { resolved = true; });
  await until('opened', () => transport().opens.length === 1);
  assert.equal(client.state, 'connecting');
  assert.deepEqual(transport().opens[0], { token: 'tok-1', offset: null });
  transport().h.onOpen();
  await settle();
  assert.equal(resolved, false, 'not before session.recovered');
  assert.equal(client.state, 'connecting');
  transport().event('session.recovered', { recovered: false, offset: '5-0' });
  await p;
  assert.deepEqual(states, ['connecting', 'connected']);
  assert.equal(client.userId, '00000000-0000-4000-8000-000000000001');
  assert.equal(client.offset, '5-0');
  client.disconnect();
  assert.deepEqual(states, ['connecting', 'connected', 'disconnected']);
});

test('a drop reconnects after a backoff with the last offset seen; recovered:true needs no re-sync', async () => {
  const { client, transport, fetch } = await makeClient(CourierClient);
  const recovered = [];
  client.on('recovered', (r) => recovered.push(r));
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(false, '1-0');
  await p;
  transport().event('chat.message.new', { offset: '7-3', chatId: CHAT, message: msg(1) });
  const states = [];
  client.on('state', (s, info) => states.push([s, info.reason]));
  transport().h.onClose('transport close');
  assert.deepEqual(states[0], ['disconnected', 'transport close']);
  await until('reconnecting', () => transport().opens.length === 2);
  assert.equal(transport().opens[1].offset, '7-3');
  const chatsBefore = fetch.calls.filter((c) => c.path === '/chats').length;
  transport().accept(true, '7-3');
  await until('connected', () => client.state === 'connected');
  assert.deepEqual(states.map((s) => s[0]), ['disconnected', 'connecting', 'connected']);
  assert.equal(fetch.calls.filter((c) => c.path === '/chats').length, chatsBefore, 'no GET /chats after recovery');
  assert.deepEqual(recovered.map((r) => r.recovered), [false, true]);
  client.disconnect();
});

test('recovered:false re-syncs: GET /chats, then chat.sync from the store\'s sequences while hasMore', async () => {
  const routes = baseRoutes({}, { chats: [chat({ lastSequence: 2 })] });
  const { client, transport } = await makeClient(CourierClient, { routes });
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(false);
  await p;
  client.store.addHistory(CHAT, [msg(1), msg(2)], false, 'latest');
  const syncs = [];
  transport().acks['chat.sync'] = (payload) => {
    syncs.push(structuredClone(payload));
    return syncs.length === 1
      ? { status: 'ok', messages: [msg(3), msg(4)], hasMore: true }
      : { status: 'ok', messages: [msg(5)], hasMore: false };
  };
  let resynced = 0;
  client.on('resync', () => { resynced += 1; });
  transport().h.onClose('transport close');
  await until('reopened', () => transport().opens.length === 2);
  transport().accept(false, '9-0');
  await until('connected', () => client.state === 'connected');
  assert.deepEqual(syncs, [{ chats: { [CHAT]: 2 } }, { chats: { [CHAT]: 4 } }]);
  assert.deepEqual(client.store.messages(CHAT).map((m) => m.sequence), [1, 2, 3, 4, 5]);
  assert.equal(resynced, 1);
  client.disconnect();
});

test('offline closes and waits (no retry timer); online reconnects at once', async () => {
  const win = new EventTarget();
  const { client, transport } = await makeClient(CourierClient, { window: win, backoff: { minMs: 500, maxMs: 1000 } });
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(true);
  await p;
  // The clock is the test's from here: any retry timer set while offline comes due.
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    win.dispatchEvent(new Event('offline'));
    assert.equal(client.state, 'disconnected');
    assert.equal(transport().closes, 1);
    transport().h.onClose('transport close');
    mock.timers.tick(60_000);
    await settle();
    assert.equal(transport().opens.length, 1, 'no attempt while offline');
  } finally {
    mock.timers.reset();
  }
  win.dispatchEvent(new Event('online'));
  assert.equal(client.state, 'connecting', 'no backoff wait after online');
  await until('reopened', () => transport().opens.length === 2);
  transport().accept(true);
  await until('connected', () => client.state === 'connected');
  client.disconnect();
});

test('failed attempts keep retrying with backoff until one succeeds', async () => {
  const { client, transport } = await makeClient(CourierClient);
  const p = client.connect();
  for (let i = 1; i <= 3; i++) {
    await until(`attempt ${i}`, () => transport().opens.length === i);
    transport().h.onFail('xhr poll error');
    assert.equal(client.state, 'disconnected');
  }
  await until('attempt 4', () => transport().opens.length === 4);
  transport().accept(true);
  await p;
  assert.equal(client.state, 'connected');
  client.disconnect();
});

test('auth.revoked stops the client: disconnected, no reconnect, an error', async () => {
  const { client, transport } = await makeClient(CourierClient);
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(true);
  await p;
  const errors = [];
  client.on('error', (e) => errors.push(e));
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    transport().event('auth.revoked', { reason: 'logout' });
    transport().h.onClose('io server disconnect');
    assert.equal(client.state, 'disconnected');
    // Past the longest backoff (20 s): a reconnect timer, had one been set, has run.
    mock.timers.tick(60_000);
    await settle();
  } finally {
    mock.timers.reset();
  }
  assert.equal(transport().opens.length, 1);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'session_revoked');
});

test('disconnect() rejects a pending connect()', async () => {
  const { client, transport } = await makeClient(CourierClient);
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  client.disconnect();
  await assert.rejects(p, /disconnected by the client/);
});

test('a re-sync leaves out chats the user left while away, keeps archived ones', async () => {
  const gone = '00000000-0000-4000-8000-0000000000c9';
  const archived = '00000000-0000-4000-8000-0000000000ca';
  let list = [chat(), chat({ id: gone }), chat({ id: archived, settings: { mutedUntil: null, archived: true, muteMentions: false } })];
  const routes = baseRoutes({ 'GET /chats': () => ({ body: { chats: list, nextCursor: null } }) });
  const { client, transport } = await makeClient(CourierClient, { routes });
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(false);
  await p;
  client.store.addHistory(gone, [msg(1, { chatId: gone })], false, 'latest');
  client.store.addHistory(CHAT, [msg(1)], false, 'latest');
  list = [chat()]; // `gone` was left; `archived` is not listed without ?archived=true
  const syncs = [];
  transport().acks['chat.sync'] = (payload) => { syncs.push(payload); return { status: 'ok', messages: [], hasMore: false }; };
  transport().h.onClose('transport close');
  await until('reopened', () => transport().opens.length === 2);
  transport().accept(false);
  await until('connected', () => client.state === 'connected');
  assert.deepEqual(syncs, [{ chats: { [CHAT]: 1 } }]);
  assert.equal(client.store.chat(gone), undefined);
  assert.deepEqual(client.store.messages(gone), []);
  assert.ok(client.store.chat(archived));
  client.disconnect();
});

test('recovered:false re-reads the held range: edits, deletes and reactions made while away apply', async () => {
  let history = [msg(1), msg(2), msg(3)];
  const afters = [];
  const routes = baseRoutes({}, {
    chats: [chat({ lastSequence: 3 })],
    history: (req) => {
      if (req.query.after === undefined) return { messages: history, hasMore: false };
      afters.push(Number(req.query.after));
      return { messages: history.filter((m) => m.sequence > Number(req.query.after)).slice(0, 2), hasMore: history.at(-1).sequence > Number(req.query.after) + 2 };
    },
  });
  const pinned = [];
  routes['GET /chats/:id/pins'] = () => ({ body: { messages: pinned } });
  const { client, transport } = await makeClient(CourierClient, { routes });
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(false);
  await p;
  await client.loadHistory(CHAT);
  await client.loadPins(CHAT);
  assert.deepEqual(afters, []);
  // While away: 1 edited, 2 deleted, 3 got a reaction and was pinned, 4 and 5 are new.
  history = [
    msg(1, { content: 'edited', editedAt: '2026-01-02T00:00:00.000Z' }),
    msg(2, { content: '', deletedAt: '2026-01-02T00:00:00.000Z' }),
    msg(3, { reactions: [{ emoji: 'fire', count: 1, me: false }] }),
    msg(4), msg(5),
  ];
  pinned.push(history[2]);
  const syncs = [];
  transport().acks['chat.sync'] = (payload) => {
    syncs.push(structuredClone(payload));
    return { status: 'ok', messages: history.filter((m) => m.sequence > payload.chats[CHAT]), hasMore: false };
  };
  transport().h.onClose('transport close');
  await until('reopened', () => transport().opens.length === 2);
  transport().accept(false, '9-0');
  await until('connected', () => client.state === 'connected');
  assert.deepEqual(afters, [0, 2], 'the held range 1..3 re-read in pages');
  assert.deepEqual(syncs, [{ chats: { [CHAT]: 4 } }], 'chat.sync from what the re-read reached');
  const list = client.store.messages(CHAT);
  assert.deepEqual(list.map((m) => [m.sequence, m.content, !!m.deletedAt, m.reactions.length]),
    [[1, 'edited', false, 0], [2, '', true, 0], [3, 'message 3', false, 1], [4, 'message 4', false, 0], [5, 'message 5', false, 0]]);
  assert.deepEqual([...client.store.pins(CHAT)], [history[2].id]);
  client.disconnect();
});

test('a refused GET /users/me fails connect(); a later connect() starts over', async () => {
  let refuse = true;
  const routes = baseRoutes({
    'GET /users/me': () => (refuse
      ? { status: 403, body: { statusCode: 403, code: 'banned', message: 'banned' } }
      : { body: { id: '00000000-0000-4000-8000-000000000001', username: 'me' } }),
  });
  const { client, transport } = await makeClient(CourierClient, { routes });
  await assert.rejects(client.connect(), (err) => err.code === 'banned');
  assert.equal(client.state, 'disconnected');
  refuse = false;
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(true);
  await p;
  assert.equal(client.state, 'connected');
  client.disconnect();
});

test('session.recovered {recovered:false} on an open connection (new epoch) re-syncs in place; offsets stay opaque', async () => {
  const routes = baseRoutes({}, { chats: [chat({ lastSequence: 1 })], history: (req) => ({ messages: req.query.after === undefined ? [msg(1)] : [msg(1), msg(2)], hasMore: false }) });
  const { client, transport, fetch } = await makeClient(CourierClient, { routes });
  const p = client.connect();
  await until('opened', () => transport().opens.length === 1);
  transport().accept(false, '1764496800123-0');
  await p;
  await client.loadHistory(CHAT);
  const syncs = [];
  transport().acks['chat.sync'] = (payload) => { syncs.push(structuredClone(payload)); return { status: 'ok', messages: [msg(3)], hasMore: false }; };
  const seen = [];
  client.on('state', (s) => seen.push(s));
  let resynced = 0;
  client.on('resync', () => { resynced += 1; });
  const chatsBefore = fetch.calls.filter((c) => c.path === '/chats').length;
  transport().event('session.recovered', { recovered: false, offset: '2:1764496800999-0' });
  await until('re-synced', () => resynced === 1);
  assert.deepEqual(seen, [], 'the connection stays connected');
  assert.equal(client.state, 'connected');
  assert.equal(fetch.calls.filter((c) => c.path === '/chats').length, chatsBefore + 1);
  assert.deepEqual(syncs, [{ chats: { [CHAT]: 2 } }]);
  assert.deepEqual(client.store.messages(CHAT).map((m) => m.sequence), [1, 2, 3]);
  assert.equal(client.offset, '2:1764496800999-0');
  transport().event('chat.message.new', { offset: '2:1764496801000-0', chatId: CHAT, message: msg(4) });
  transport().h.onClose('transport close');
  await until('reopened', () => transport().opens.length === 2);
  assert.equal(transport().opens[1].offset, '2:1764496801000-0', 'the last offset, as received');
  client.disconnect();
});
