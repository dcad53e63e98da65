// The outbox: optimistic echo, retries of 503 / 429 / network errors with the same
// clientMessageId, order per chat, failed + retry(), states from saved and status events,
// persistence across a reload (new client, same storage), reconciliation from history.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CourierClient, MemoryStorage } from '../dist/index.js';
import { BOB, CHAT, ME, baseRoutes, chat, makeClient, msg, until } from './fakes.mjs';

const unavailable = { status: 503, body: { statusCode: 503, code: 'unavailable', message: 'broker' }, headers: { 'retry-after': '0' } };
const limited = { status: 429, body: { statusCode: 429, code: 'rate_limited', message: 'slow down' }, headers: { 'retry-after': '0' } };

async function connected(opts) {
  const made = await makeClient(CourierClient, opts);
  const p = made.client.connect();
  await until('opened', () => made.transport().opens.length === 1);
  made.transport().accept(true);
  await p;
  return made;
}

test('send: optimistic echo, retries 503 / 429 / network with the same id, then sent → delivered → read', async () => {
  const answers = [unavailable, limited, new TypeError('fetch failed'), { status: 202 }];
  const posts = [];
  const routes = baseRoutes({
    'POST /chats/:id/messages': (req) => { posts.push(req.body); const a = answers.shift(); return a.status === 202 ? { status: 202, body: { brokerMessageId: 'b', clientMessageId: req.body.clientMessageId } } : a; },
  });
  const { client, transport } = await connected({ routes });
  const states = [];
  client.on('outbox', (entries) => states.push(entries[0]?.state));
  const entry = client.send(CHAT, { content: 'hello', replyToId: 'r-1' });
  const shown = client.store.messages(CHAT);
  assert.equal(shown.length, 1);
  assert.deepEqual([shown[0].id, shown[0].sequence, shown[0].pending, shown[0].senderId, shown[0].content],
    [null, null, 'sending', ME, 'hello']);
  assert.equal(entry.state, 'sending');
  await until('posted 4 times', () => posts.length === 4);
  assert.equal(new Set(posts.map((p) => p.clientMessageId)).size, 1, 'one clientMessageId for every retry');
  assert.equal(posts[0].clientMessageId, entry.clientMessageId);
  assert.equal(posts[0].replyToId, 'r-1');
  assert.equal(entry.state, 'sending', 'a 202 is not yet "sent"');
  const saved = msg(1, { senderId: ME, clientMessageId: entry.clientMessageId, content: 'hello' });
  transport().event('chat.message.saved', { offset: '2-0', chatId: CHAT, message: saved });
  assert.equal(entry.state, 'sent');
  assert.equal(entry.sequence, 1);
  assert.deepEqual(client.store.messages(CHAT).map((m) => [m.id, m.pending]), [[saved.id, undefined]]);
  transport().event('chat.message.status', { offset: '2-1', chatId: CHAT, userId: BOB, status: 'delivered', sequence: 1 });
  assert.equal(entry.state, 'delivered');
  transport().event('chat.message.status', { offset: '2-2', chatId: CHAT, userId: BOB, status: 'read', sequence: 1 });
  assert.equal(entry.state, 'read');
  assert.ok(states.includes('sent') && states.includes('delivered'));
  client.disconnect();
});

test('a 4xx other than 429 fails the entry; retry() re-queues it with the same id', async () => {
  let refuse = true;
  const posts = [];
  const routes = baseRoutes({
    'POST /chats/:id/messages': (req) => {
      posts.push(req.body.clientMessageId);
      return refuse ? { status: 403, body: { statusCode: 403, code: 'forbidden', message: 'no' } } : { status: 202, body: {} };
    },
  });
  const { client } = await connected({ routes });
  const entry = client.send(CHAT, { content: 'x' });
  await until('failed', () => entry.state === 'failed');
  assert.equal(entry.error.code, 'forbidden');
  assert.equal(client.store.messages(CHAT)[0].pending, 'failed');
  refuse = false;
  entry.retry();
  assert.equal(entry.state, 'sending');
  await until('posted again', () => posts.length === 2);
  assert.equal(posts[0], posts[1]);
  assert.equal(client.store.messages(CHAT)[0].pending, 'sending');
  client.disconnect();
});

test('sends of one chat go out in order: the second waits while the first is retried', async () => {
  const posts = [];
  let n = 0;
  const routes = baseRoutes({
    'POST /chats/:id/messages': (req) => { posts.push(req.body.content); n += 1; return n <= 2 ? unavailable : { status: 202, body: {} }; },
  });
  const { client } = await connected({ routes });
  client.send(CHAT, { content: 'first' });
  client.send(CHAT, { content: 'second' });
  await until('both posted', () => posts.includes('second'));
  assert.deepEqual(posts, ['first', 'first', 'first', 'second']);
  client.disconnect();
});

test('the outbox survives a reload: a new client with the same storage re-sends with the same id', async () => {
  const storage = new MemoryStorage();
  const down = baseRoutes({ 'POST /chats/:id/messages': () => new TypeError('network down') });
  const first = await connected({ routes: down, storage });
  const entry = first.client.send(CHAT, { content: 'survives' });
  await first.client.outboxFlushed();
  assert.deepEqual((await storage.load()).map((e) => [e.clientMessageId, e.state]), [[entry.clientMessageId, 'sending']]);
  first.client.disconnect();

  const posts = [];
  const up = baseRoutes({ 'POST /chats/:id/messages': (req) => { posts.push(req.body); return { status: 202, body: {} }; } });
  const second = await connected({ routes: up, storage });
  assert.deepEqual(second.client.store.messages(CHAT).map((m) => [m.clientMessageId, m.pending]), [[entry.clientMessageId, 'sending']]);
  await until('re-sent', () => posts.length === 1);
  assert.equal(posts[0].clientMessageId, entry.clientMessageId);
  assert.equal(posts[0].content, 'survives');
  second.transport().event('chat.message.saved', { offset: '3-0', chatId: CHAT,
    message: msg(1, { senderId: ME, clientMessageId: entry.clientMessageId, content: 'survives' }) });
  assert.equal(second.client.outbox()[0].state, 'sent');
  await second.client.outboxFlushed();
  assert.deepEqual(await storage.load(), [], 'nothing left to send');
  second.client.disconnect();
});

test('a failed entry stays failed across a reload, with retry()', async () => {
  const storage = new MemoryStorage();
  const bad = baseRoutes({ 'POST /chats/:id/messages': () => ({ status: 400, body: { statusCode: 400, code: 'validation_failed', message: 'bad' } }) });
  const first = await connected({ routes: bad, storage });
  const entry = first.client.send(CHAT, { content: 'bad' });
  await until('failed', () => entry.state === 'failed');
  await first.client.outboxFlushed();
  first.client.disconnect();
  const second = await connected({ routes: bad, storage });
  const [again] = second.client.outbox();
  assert.deepEqual([again.clientMessageId, again.state, again.error.code], [entry.clientMessageId, 'failed', 'validation_failed']);
  assert.equal(second.client.store.messages(CHAT)[0].pending, 'failed');
  again.cancel();
  assert.deepEqual(second.client.store.messages(CHAT), []);
  await second.client.outboxFlushed();
  assert.deepEqual(await storage.load(), []);
  second.client.disconnect();
});

test('a 202 whose saved event never comes is reconciled from history after the send-time sequence', async () => {
  let saved = null;
  const queries = [];
  const routes = baseRoutes({
    'POST /chats/:id/messages': (req) => { saved = msg(4, { senderId: ME, clientMessageId: req.body.clientMessageId, content: req.body.content }); return { status: 202, body: {} }; },
  }, {
    chats: [chat({ lastSequence: 2 })],
    history: (req) => {
      queries.push(req.query);
      if (req.query.after === '2') return { messages: [msg(3)], hasMore: true };
      if (req.query.after === '3') return { messages: saved ? [saved] : [], hasMore: false };
      return { messages: [msg(1), msg(2)], hasMore: false };
    },
  });
  const { client } = await connected({ routes, confirmAfterMs: 10 });
  await client.loadChats();
  await client.loadHistory(CHAT);
  const entry = client.send(CHAT, { content: 'lost event' });
  await until('sent', () => entry.state === 'sent');
  assert.deepEqual(queries.slice(1).map((q) => q.after), ['2', '3'], 'pages after the sequence seen at send time');
  assert.deepEqual(client.store.messages(CHAT).map((m) => [m.sequence, m.pending]), [[1, undefined], [2, undefined], [3, undefined], [4, undefined]]);
  client.disconnect();
});

test('a saved event below the loaded run (a re-send deduplicated late) still completes the entry', async () => {
  const routes = baseRoutes({ 'POST /chats/:id/messages': () => ({ status: 202, body: {} }) });
  const { client, transport } = await connected({ routes, confirmAfterMs: 60_000 });
  client.store.addHistory(CHAT, [msg(50), msg(51)], true, 'latest');
  const entry = client.send(CHAT, { content: 'old one' });
  await until('posted', () => entry.error === undefined && client.outbox().length === 1);
  transport().event('chat.message.saved', { offset: '5-0', chatId: CHAT, message: msg(10, { senderId: ME, clientMessageId: entry.clientMessageId }) });
  assert.equal(entry.state, 'sent');
  assert.deepEqual(client.store.messages(CHAT).map((m) => m.sequence), [50, 51], 'no hole shown, pending gone');
  client.disconnect();
});
