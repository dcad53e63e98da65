// SSE transport (contract "SSE transport"): GET /events on a gateway, driven by the npm
// `eventsource` client (a WHATWG EventSource). Events carry `id: <offset>`; Last-Event-ID
// (header, ?lastEventId=, or the client's own reconnect) resumes like auth.offset; tokens
// are checked (401); a stream is a connection for presence and delivered receipts.

import assert from 'node:assert/strict';
import http from 'node:http';

import { EVENTS, assertMessageEvent } from './contract.mjs';
import { accessClaims, barrier, craftJwt, useDeployment, waitFor } from './harness.mjs';
import {
  PRESENCE, RECOVERED, RECOVERABLE, SseClient, TcpProxy, assertIncreasing, assertRecovered, compareOffsets,
  waitForEvent,
} from './realtime.mjs';

const d = useDeployment({ mode: 'split', gateways: 2, env: { PRESENCE_GRACE_SECS: '1' } });
const allInOne = useDeployment({ mode: 'all-in-one' });

/**
 * An SseClient on gateway `g` (index or URL) of `dep`, closed at the end of the test;
 * it records `chat.updated` too, the marker of `barrier`.
 */
function sse(g, token, options = {}, dep = d) {
  const names = ['chat.updated', ...(options.names ?? [])];
  const client = new SseClient(typeof g === 'number' ? dep.gateway(g) : g, { token, ...options, names });
  dep.clients.add(client);
  return client;
}

/** Opens `client` and checks its first event: session.recovered with id = its offset. */
async function openFresh(client, recovered = false) {
  await client.opened();
  const first = await waitForEvent(client, () => true, 10_000, 'a first event');
  assert.equal(first.event, RECOVERED, `${client.label}: the first event is ${RECOVERED}`);
  assertRecovered(first.payload, recovered, client.label);
  assert.equal(first.id, first.payload.offset, `${client.label}: the id of ${RECOVERED} is its offset`);
  return first;
}

/** The recoverable events of an SseClient, each checked: id = payload.offset. */
function recoverable(client) {
  const list = client.events.filter((e) => RECOVERABLE.includes(e.event));
  for (const e of list) assert.equal(e.id, e.payload?.offset, `${client.label}: ${e.event} id must equal payload.offset`);
  return list;
}

const news = (client, chatId) => client.events.filter((e) => e.event === EVENTS.NEW && e.payload.chatId === chatId);
const seqs = (list) => list.map((e) => e.payload.message.sequence);

/** Alice (on a socket) and bob, with their direct chat, on `dep`. */
async function pair(dep = d) {
  const [alice, bob] = await dep.registerAll('alice', 'bob');
  const chat = await dep.createDirect(alice.accessToken, bob.user.id);
  const aliceSocket = await dep.connect(0, alice.accessToken, { label: 'alice' });
  /** Sends from alice and waits until it is persisted and published (her own saved event). */
  const send = async (content) => {
    const m = await dep.send(alice.accessToken, chat.id, content);
    await waitFor(() => aliceSocket.count(EVENTS.SAVED, { clientMessageId: m.clientMessageId }) === 1, 10_000,
      { message: `alice's saved for ${content}` });
    return m;
  };
  return { alice, bob, chat, aliceSocket, send };
}

d.test('events arrive with id = payload offset, on every stream and socket of the user, once each', async () => {
  const { alice, bob, chat, aliceSocket, send } = await pair();
  const viaHeader = sse(0, bob.accessToken, { via: 'header', label: 'bob sse (header) @gw1' });
  const viaQuery = sse(1, bob.accessToken, { via: 'query', label: 'bob sse (?token=) @gw2' });
  const bobSocket = await d.connect(1, bob.accessToken, { label: 'bob socket' });
  await Promise.all([openFresh(viaHeader), openFresh(viaQuery)]);

  for (let i = 1; i <= 3; i++) await send(`to sse ${i}`);
  for (const c of [viaHeader, viaQuery]) {
    await waitFor(() => news(c, chat.id).length >= 3, 10_000, { message: () => `${c.label}: ${news(c, chat.id).length}/3` });
  }
  await barrier(d, [viaHeader, viaQuery, bobSocket]);
  const fromSocket = bobSocket.received(EVENTS.NEW);
  for (const c of [viaHeader, viaQuery]) {
    assert.deepEqual(seqs(news(c, chat.id)), [1, 2, 3], `${c.label}: each message once, in order`);
    for (const e of news(c, chat.id)) assertMessageEvent(e.payload, { chatId: chat.id, senderId: alice.user.id });
    assertIncreasing(recoverable(c).map((e) => e.id), c.label);
    // The same events, with the same offsets, as bob's socket.
    assert.deepEqual(news(c, chat.id).map((e) => e.payload), fromSocket, `${c.label} and bob's socket got the same payloads`);
  }

  // Reaching bob's streams advances his delivered mark: alice sees "delivered" up to 3.
  await waitForEvent(aliceSocket, (e) => e.event === EVENTS.STATUS && e.payload.userId === bob.user.id
    && e.payload.status === 'delivered' && e.payload.sequence === 3, 10_000, 'delivered 3 from bob');

  // Bob's own message comes back as saved; alice's read as a read status.
  const own = await d.send(bob.accessToken, chat.id, 'from bob');
  assert.equal((await aliceSocket.ack('chat.read', { chatId: chat.id, sequence: 3 }))?.status, 'ok');
  for (const c of [viaHeader, viaQuery]) {
    const saved = await waitForEvent(c, (e) => e.event === EVENTS.SAVED, 10_000, EVENTS.SAVED);
    assertMessageEvent(saved.payload, { clientMessageId: own.clientMessageId, sequence: 4 });
    const read = await waitForEvent(c, (e) => e.event === EVENTS.STATUS && e.payload.status === 'read', 10_000, 'read status');
    assert.deepEqual({ ...read.payload, offset: undefined },
      { chatId: chat.id, userId: alice.user.id, status: 'read', sequence: 3, offset: undefined });
    assertIncreasing(recoverable(c).map((e) => e.id), c.label);
  }
});

d.test('a missing or bad token is refused with 401; the stream is not retried', async () => {
  const { bob } = await pair();
  const foreign = craftJwt(accessClaims(bob.user.id), 'another-secret-another-secret-another-secret!!');
  const expired = craftJwt({ ...accessClaims(bob.user.id), exp: Math.floor(Date.now() / 1000) - 60 }, d.jwtSecret);
  const cases = [
    ['no token', null, 'header'],
    ['garbage (header)', 'not-a-jwt', 'header'],
    ['garbage (?token=)', 'not-a-jwt', 'query'],
    ['signed by another secret', foreign, 'query'],
    ['expired', expired, 'header'],
    ['alg none', craftJwt(accessClaims(bob.user.id), null, { alg: 'none', typ: 'JWT' }), 'header'],
  ];
  for (const [what, token, via] of cases) {
    const c = sse(0, token, { via, label: `sse (${what})` });
    const err = await c.failed();
    assert.equal(err?.code, 401, `${what}: error code ${JSON.stringify(c.errors)}`);
    assert.equal(c.opens, 0, `${what}: never open`);
    assert.equal(c.requests.length, 1, `${what}: a 401 is final (no retry)`);

    const url = new URL('/events', d.gateway(0));
    if (token && via === 'query') url.searchParams.set('token', token);
    const res = await fetch(url, { headers: token && via === 'header' ? { authorization: `Bearer ${token}` } : {} });
    assert.equal(res.status, 401, `${what}: raw status`);
    assert.equal((await res.json()).code, 'unauthorized', `${what}: error body code`);
  }
  await openFresh(sse(0, bob.accessToken, { label: 'bob afterwards' }));
});

for (const lastEventIdVia of ['header', 'query']) {
  d.test(`a closed stream reopened with Last-Event-ID (${lastEventIdVia}) gets what it missed, once, in order`, async () => {
    const { bob, chat, send } = await pair();
    const first = sse(0, bob.accessToken, { label: 'bob stream 1' });
    await openFresh(first);
    await send('m1');
    await send('m2');
    await waitFor(() => news(first, chat.id).length === 2, 10_000, { message: 'stream 1 got m1 and m2' });
    first.close();
    const stream1 = recoverable(first);
    const lastId = stream1.at(-1).id;

    for (let i = 3; i <= 7; i++) await send(`m${i}`);
    const second = sse(1, bob.accessToken, { lastEventId: lastId, lastEventIdVia, label: 'bob stream 2 @gw2' });
    await second.opened();
    const r = await waitForEvent(second, (e) => e.event === RECOVERED, 10_000, RECOVERED);
    assertRecovered(r.payload, true, `Last-Event-ID ${lastId} via ${lastEventIdVia}`);
    assert.equal(r.id, r.payload.offset, `the id of ${RECOVERED} is its offset`);
    const rIndex = second.events.indexOf(r);
    assert.deepEqual(seqs(second.events.slice(0, rIndex)), [3, 4, 5, 6, 7], `the missed messages, before ${RECOVERED}`);

    await send('m8');
    await waitFor(() => news(second, chat.id).length === 6, 10_000, { message: 'stream 2 got m8 live' });
    await barrier(d, [second]);
    assert.equal(second.events.indexOf(news(second, chat.id).at(-1)) > rIndex, true, 'm8 comes after session.recovered');
    const all = [...stream1, ...recoverable(second)];
    assert.deepEqual(seqs(all), [1, 2, 3, 4, 5, 6, 7, 8], 'every message exactly once across both streams');
    assertIncreasing(all.map((e) => e.id), 'ids across both streams');
    assert.ok(compareOffsets(r.payload.offset, lastId) > 0);
  });
}

d.test('after a dropped connection the EventSource reconnects by itself with Last-Event-ID and catches up', { timeout: 60_000 }, async () => {
  const { bob, chat, send } = await pair();
  const proxy = await new TcpProxy(d.gateway(0)).start();
  try {
    const stream = sse(proxy.url, bob.accessToken, { label: 'bob via proxy' });
    await openFresh(stream);
    await send('m1');
    await send('m2');
    await waitFor(() => news(stream, chat.id).length === 2, 10_000, { message: 'm1 and m2' });
    const lastId = stream.events.at(-1).id;
    const eventsBefore = stream.events.length;

    proxy.cut(); // the network path dies; the client does not know why
    await waitFor(() => stream.errors.length > 0, 10_000, { message: 'the EventSource noticed the drop' });
    for (let i = 3; i <= 6; i++) await send(`m${i}`);
    proxy.restore();

    await waitFor(() => stream.opens >= 2, 20_000, { message: () => `no reconnect (errors ${JSON.stringify(stream.errors)})` });
    const r = await waitForEvent(stream, (e, i) => i >= eventsBefore && e.event === RECOVERED, 10_000, `a second ${RECOVERED}`);
    assertRecovered(r.payload, true, 'the client\'s own reconnect');
    const reconnect = stream.requests.at(-1);
    assert.equal(reconnect['Last-Event-ID'], lastId, 'the EventSource sent the last id it saw');
    await send('m7');
    await waitFor(() => news(stream, chat.id).length >= 7, 10_000, { message: () => `${news(stream, chat.id).length}/7 messages` });
    await barrier(d, [stream]);
    assert.deepEqual(seqs(news(stream, chat.id)), [1, 2, 3, 4, 5, 6, 7], 'every message once, in order, across the drop');
    const rIndex = stream.events.indexOf(r);
    assert.deepEqual(seqs(stream.events.slice(eventsBefore, rIndex).filter((e) => e.event === EVENTS.NEW)), [3, 4, 5, 6],
      `the missed messages come before ${RECOVERED}`);
    assertIncreasing(recoverable(stream).map((e) => e.id), 'ids across the drop');
  } finally {
    proxy.close();
  }
});

d.test('an SSE stream alone makes its user online for a contact; closing it makes them offline', async () => {
  const { alice, bob, aliceSocket } = await pair();
  const presenceOf = async () => {
    const res = await d.api('GET', `/users/${bob.user.id}/presence`, { token: alice.accessToken });
    assert.equal(res.status, 200, `presence: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  assert.equal((await presenceOf()).status, 'offline', 'bob has no connection yet');

  const stream = sse(1, bob.accessToken, { label: 'bob sse' });
  await openFresh(stream);
  const online = await waitForEvent(aliceSocket, (e) => e.event === PRESENCE && e.payload.userId === bob.user.id
    && e.payload.status === 'online', 10_000, 'presence online of bob');
  assert.equal(typeof online.payload.lastSeenAt, 'string');
  assert.deepEqual({ userId: (await presenceOf()).userId, status: (await presenceOf()).status },
    { userId: bob.user.id, status: 'online' });

  const closedAt = Date.now();
  stream.close();
  const offline = await waitForEvent(aliceSocket, (e) => e.event === PRESENCE && e.payload.userId === bob.user.id
    && e.payload.status === 'offline', 10_000, 'presence offline of bob (grace 1 s)');
  process.stdout.write(`sse presence: offline ${offline.at - closedAt} ms after the stream closed (grace 1 s)\n`);
  const after = await presenceOf();
  assert.equal(after.status, 'offline');
  assert.equal(typeof after.lastSeenAt, 'string', 'lastSeenAt once seen');
});

d.test('wire format: text/event-stream, id/event/data fields, and a ": ping" comment every 15 s', { timeout: 40_000 }, async () => {
  const { bob, chat, send } = await pair();
  const url = new URL('/events', d.gateway(0));
  let text = '';
  const openedAt = Date.now();
  const res = await new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${bob.accessToken}`, accept: 'text/event-stream' } }, resolve);
    req.on('error', reject);
  });
  try {
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/event-stream/);
    res.setEncoding('utf8');
    res.on('data', (chunk) => { text += chunk; });
    res.on('error', () => {});
    const frames = () => text.split('\n\n').slice(0, -1).map((f) => f.split('\n'));
    await waitFor(() => frames().length >= 1, 10_000, { message: 'a first frame' });
    const field = (lines, name) => lines.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim();
    assert.equal(field(frames()[0], 'event'), RECOVERED, `first frame: ${JSON.stringify(frames()[0])}`);

    await send('on the wire');
    const frame = await waitFor(() => frames().find((f) => field(f, 'event') === EVENTS.NEW), 10_000, { message: 'a message frame' });
    const data = JSON.parse(frame.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n'));
    assert.equal(field(frame, 'id'), data.offset, 'id: is the payload offset');
    assertMessageEvent(data, { chatId: chat.id, content: 'on the wire', sequence: 1 });

    // A comment is a line starting with ":"; the contract's is exactly ": ping".
    const comments = () => text.split('\n').filter((l) => l.startsWith(':'));
    await waitFor(() => comments().length > 0, 17_000, { intervalMs: 100, message: 'no comment line within 17 s' });
    const after = Date.now() - openedAt;
    assert.ok(after >= 10_000, `the first comment came ${after} ms after opening (expected about 15 s)`);
    assert.equal(comments()[0], ': ping', `the keep-alive comment line, as sent: ${JSON.stringify(comments()[0])}`);
  } finally {
    res.destroy();
  }
});

allInOne.test('the all-in-one courier serves GET /events too, with Last-Event-ID resume', async () => {
  const { bob, chat, send } = await pair(allInOne);
  const first = sse(0, bob.accessToken, { via: 'query', label: 'bob @courier' }, allInOne);
  await openFresh(first);
  await send('m1');
  const m1 = await waitForEvent(first, (e) => e.event === EVENTS.NEW, 10_000, 'm1');
  assert.equal(m1.id, m1.payload.offset);
  first.close();
  await send('m2');
  const second = sse(0, bob.accessToken, { lastEventId: m1.id, label: 'bob @courier, resumed' }, allInOne);
  await second.opened();
  const r = await waitForEvent(second, (e) => e.event === RECOVERED, 10_000, RECOVERED);
  assertRecovered(r.payload, true, 'resume on courier');
  assert.deepEqual(seqs(second.events.slice(0, second.events.indexOf(r))), [2]);
  assert.equal(news(second, chat.id).length, 1);
});
