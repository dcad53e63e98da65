// Shared by the typing, presence, receipts and connect-race tests: waiting on a
// socket's events after a cursor, acknowledgements, presence and chat lookups over
// REST, and a connect that lets a test act inside the very `connect` callback.

import assert from 'node:assert/strict';

import { io } from 'socket.io-client';

import { barrier } from './barrier.mjs';
import { EVENTS, assertTimestamp } from './contract.mjs';
import { ChatClient, waitFor } from './harness.mjs';

/** Server -> client event names of the realtime features. */
export const EV = Object.freeze({
  ...EVENTS,
  TYPING: 'chat.typing',
  PRESENCE: 'presence.update',
  RECOVERED: 'session.recovered',
});

/** A position in a client's event log: only what arrives after it counts. */
export const cursor = (client) => client.events.length;

/** The entries ({event, payload, at}) of `client` named `event`, from `since`, matching `pred`. */
export function entries(client, event, { since = 0, pred = () => true } = {}) {
  return client.events.slice(since).filter((e) => e.event === event && pred(e.payload));
}

const describe = (client, since) => client.events.slice(since)
  .map((e) => `${e.event} ${JSON.stringify(e.payload)}`).join('\n    ') || '(nothing)';

/**
 * Resolves the first entry {event, payload, at} of `client` named `event` after `since`
 * whose payload matches `pred`; fails after `timeoutMs` listing what did arrive.
 */
export function waitEvent(client, event, pred = () => true,
  { since = 0, timeoutMs = 5000, what = '' } = {}) {
  return waitFor(() => entries(client, event, { since, pred })[0], timeoutMs, {
    intervalMs: 10,
    message: () => `${client.label}: no ${event} ${what} within ${timeoutMs} ms; got:\n    ${describe(client, since)}`,
  });
}

/**
 * Asserts that none of `clients` got an `event` matching `pred` after `since` (a
 * number, or a Map client -> cursor), once a `barrier` marker reached each of them:
 * call it when the event would already have been published.
 */
export async function expectNone(d, clients, event, pred = () => true, { since = 0, what = '' } = {}) {
  await barrier(d, clients);
  for (const c of clients) {
    const from = since instanceof Map ? since.get(c) ?? 0 : since;
    const got = entries(c, event, { since: from, pred });
    assert.equal(got.length, 0, `${c.label} must not get ${event} ${what}; got ${JSON.stringify(got.map((e) => e.payload))}`);
  }
}

/** Cursors of several clients, for `expectNone(..., {since})`. */
export const cursors = (clients) => new Map(clients.map((c) => [c, cursor(c)]));

/** Emits `event` with an ack and asserts {status: "ok"}; resolves the ack. */
export async function ackOk(client, event, payload) {
  const ack = await client.ack(event, payload);
  assert.equal(ack?.status, 'ok', `${client.label}: ${event} ${JSON.stringify(payload)} ack: ${JSON.stringify(ack)}`);
  return ack;
}

/** Emits `event` with an ack and asserts {status: "error", code, message}; resolves the ack. */
export async function ackError(client, event, payload, code) {
  const ack = await client.ack(event, payload);
  assert.equal(ack?.status, 'error', `${client.label}: ${event} ${JSON.stringify(payload)} must fail, ack: ${JSON.stringify(ack)}`);
  if (code !== undefined) assert.equal(ack.code, code, `${client.label}: ${event} error code in ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.message, 'string', `error ack message in ${JSON.stringify(ack)}`);
  return ack;
}

/** Two users with a direct chat; resolves {a, b, chat} (accounts from `register`). */
export async function directPair(d, names = ['alice', 'bob']) {
  const [a, b] = await d.registerAll(...names);
  const chat = await d.createDirect(a.accessToken, b.user.id);
  return { a, b, chat };
}

/** `presence.update` payload: {userId, status, lastSeenAt}. */
export function assertPresence(p, { userId, status, lastSeenAt } = {}) {
  assert.ok(p && typeof p === 'object', `presence must be an object, got ${JSON.stringify(p)}`);
  for (const f of ['userId', 'status', 'lastSeenAt']) {
    assert.ok(Object.hasOwn(p, f), `presence lacks "${f}": ${JSON.stringify(p)}`);
  }
  if (userId !== undefined) assert.equal(p.userId, userId, 'presence userId');
  assert.ok(['online', 'offline'].includes(p.status), `presence status, got ${JSON.stringify(p.status)}`);
  if (status !== undefined) assert.equal(p.status, status, `presence status of ${p.userId}`);
  if (lastSeenAt === null) assert.equal(p.lastSeenAt, null, `lastSeenAt of a user never seen: ${JSON.stringify(p)}`);
  else if (lastSeenAt !== undefined || p.lastSeenAt !== null) assertTimestamp(p.lastSeenAt, 'presence lastSeenAt', { millis: true });
  return p;
}

/** GET /users/:userId/presence as `token`; resolves {status, body}. */
export function getPresence(d, token, userId) {
  return d.api('GET', `/users/${userId}/presence`, { token });
}

/** POST /users/presence {userIds} as `token`; resolves {status, body}. */
export function bulkPresence(d, token, userIds) {
  return d.api('POST', '/users/presence', { token, body: { userIds } });
}

/** GET /chats/:chatId (with marks); asserts 200 and resolves the body. */
export async function chatWithMarks(d, token, chatId) {
  const res = await d.api('GET', `/chats/${chatId}`, { token });
  assert.equal(res.status, 200, `GET /chats/${chatId}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body?.marks), `GET /chats/:chatId must list "marks": ${JSON.stringify(res.body)}`);
  for (const m of res.body.marks) {
    assert.ok(Number.isInteger(m.deliveredSequence) && Number.isInteger(m.readSequence),
      `mark ${JSON.stringify(m)}`);
  }
  return res.body;
}

/** The mark {userId, deliveredSequence, readSequence} of `userId` in `chat` (a GET /chats/:id body). */
export function markOf(chat, userId) {
  const m = chat.marks.find((x) => x.userId === userId);
  assert.ok(m, `no mark for ${userId} in ${JSON.stringify(chat.marks)}`);
  return { userId: m.userId, deliveredSequence: m.deliveredSequence, readSequence: m.readSequence };
}

/** {sequence -> {status, deliveredCount, readCount}} of the newest page of history as `token`. */
export async function receiptView(d, token, chatId) {
  const page = await d.history(token, chatId, { limit: 100 });
  return Object.fromEntries(page.messages.map((m) => [m.sequence,
    { status: m.status, deliveredCount: m.deliveredCount, readCount: m.readCount }]));
}

/** `chat.message.status` payload: {chatId, userId, status, sequence, offset}. */
export function assertStatusEvent(p, expected = {}) {
  for (const f of ['chatId', 'userId', 'status', 'sequence', 'offset']) {
    assert.ok(Object.hasOwn(p ?? {}, f), `${EV.STATUS} lacks "${f}": ${JSON.stringify(p)}`);
  }
  assert.ok(['delivered', 'read'].includes(p.status), `${EV.STATUS} status ${JSON.stringify(p.status)}`);
  assert.ok(Number.isInteger(p.sequence) && p.sequence >= 1, `${EV.STATUS} sequence ${JSON.stringify(p.sequence)}`);
  assert.equal(typeof p.offset, 'string', `${EV.STATUS} offset must be a string: ${JSON.stringify(p)}`);
  assert.ok(p.offset.length > 0, `${EV.STATUS} offset must not be empty`);
  for (const [k, v] of Object.entries(expected)) assert.equal(p[k], v, `${EV.STATUS}.${k} in ${JSON.stringify(p)}`);
  return p;
}

/**
 * Opens a socket on namespace /chat of `url` (like client.mjs `connect`) and calls
 * `onConnect(client)` synchronously inside the socket's `connect` listener, before
 * anything else can run. Resolves {client, hookResult}; the client is registered with
 * the deployment `d` so it is closed at the end of the test.
 */
export function connectAndAct(d, url, token, onConnect, {
  transports = ['websocket'], label = 'socket', timeoutMs = 10_000,
} = {}) {
  const socket = io(`${url}/chat`, {
    path: '/socket.io', transports, auth: { token }, reconnection: false, forceNew: true, timeout: timeoutMs,
  });
  const client = new ChatClient(socket, label);
  d.clients.add(client);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.close(); reject(new Error(`${label}: no connect within ${timeoutMs} ms`)); },
      timeoutMs + 1000);
    socket.once('connect_error', (err) => { clearTimeout(timer); socket.close(); reject(err); });
    socket.once('connect', () => {
      clearTimeout(timer);
      let hookResult;
      try {
        hookResult = onConnect(client);
      } catch (err) {
        reject(err);
        return;
      }
      resolve({ client, hookResult });
    });
  });
}
