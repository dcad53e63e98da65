// Small fakes for the unit tests: a REST server behind `fetch`, a transport the test drives,
// message factories, and a poll helper. Unit tests only; the real stack is for the e2e suite.

import { randomUUID } from 'node:crypto';

export const ME = '00000000-0000-4000-8000-000000000001';
export const BOB = '00000000-0000-4000-8000-000000000002';
export const CAROL = '00000000-0000-4000-8000-000000000003';
export const CHAT = '00000000-0000-4000-8000-0000000000c1';

export function user(id, username = id.slice(-4)) {
  return { id, username, displayName: null, createdAt: '2026-01-01T00:00:00.000Z', avatarUrl: null, bio: null };
}

export function msg(sequence, over = {}) {
  return {
    id: over.id ?? `m-${over.chatId ?? CHAT}-${sequence}`, chatId: CHAT, senderId: BOB, clientMessageId: randomUUID(),
    content: `message ${sequence}`, messageType: 'text', status: 'sent', sequence,
    sentAt: new Date(Date.UTC(2026, 0, 1, 0, 0, sequence)).toISOString(), deliveredCount: 0, readCount: 0,
    editedAt: null, deletedAt: null, replyTo: null, forwardedFrom: null, reactions: [], mentions: [], bot: null,
    attachments: [], ...over,
  };
}

export function chat(over = {}) {
  return {
    id: CHAT, type: 'direct', title: null, createdAt: '2026-01-01T00:00:00.000Z', lastSequence: 0,
    participants: [{ userId: ME, role: 'member', joinedAt: '2026-01-01T00:00:00.000Z' },
      { userId: BOB, role: 'member', joinedAt: '2026-01-01T00:00:00.000Z' }],
    unreadCount: 0, lastMessage: null, settings: { mutedUntil: null, archived: false, muteMentions: false },
    ...over,
  };
}

/**
 * A fetch whose answers come from `routes`: {'GET /users/me': (req) => ({status, body, headers})}.
 * Paths match without the query; `calls` records every request.
 */
export function fakeFetch(routes) {
  const calls = [];
  const f = async (url, init = {}) => {
    const u = new URL(url);
    const req = { method: init.method ?? 'GET', path: u.pathname, query: Object.fromEntries(u.searchParams),
      headers: init.headers ?? {}, body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body };
    calls.push(req);
    let handler = routes[`${req.method} ${req.path}`];
    if (!handler) {
      for (const [key, h] of Object.entries(routes)) {
        const [m, pattern] = key.split(' ');
        if (m === req.method && new RegExp(`^${pattern.replace(/:[a-z]+/gi, '[^/]+')}$`).test(req.path)) { handler = h; break; }
      }
    }
    const out = handler ? await handler(req) : { status: 404, body: { statusCode: 404, code: 'not_found', message: 'no route' } };
    if (out instanceof Error) throw out;
    const status = out.status ?? 200;
    return new Response(status === 204 || out.body === undefined ? null : JSON.stringify(out.body),
      { status, headers: { 'content-type': 'application/json', ...(out.headers ?? {}) } });
  };
  f.calls = calls;
  return f;
}

/** The routes every connected client needs: /users/me, /chats, and history. */
export function baseRoutes(extra = {}, { chats = [chat()], history = () => ({ messages: [], hasMore: false }) } = {}) {
  return {
    'GET /users/me': () => ({ body: user(ME, 'me') }),
    'GET /chats': () => ({ body: { chats, nextCursor: null } }),
    'GET /chats/:id/messages': (req) => ({ body: history(req) }),
    ...extra,
  };
}

/** A transport the test drives: records opens and emits, answers acks through `acks`. */
export class FakeTransport {
  kind = 'socketio';
  opens = [];
  closes = 0;
  emits = [];
  acks = { 'chat.sync': () => ({ status: 'ok', messages: [], hasMore: false }), 'auth.refresh': () => ({ status: 'ok' }) };

  constructor(handlers) { this.h = handlers; }
  open(token, offset) { this.opens.push({ token, offset }); this.onOpenCalled?.(); }
  close() { this.closes += 1; }
  async emitWithAck(name, payload) {
    this.emits.push({ name, payload });
    return (this.acks[name] ?? (() => ({ status: 'ok' })))(payload);
  }

  /** Server side: the connection opens and answers session.recovered. */
  accept(recovered = false, offset = '1-0') {
    this.h.onOpen();
    this.h.onEvent('session.recovered', { recovered, offset });
  }

  event(name, payload) { this.h.onEvent(name, payload); }
}

/** Resolves once `fn()` is truthy (polls every few ms), or rejects after `ms`. */
export async function until(what, fn, ms = 2000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Lets everything already queued run: promise continuations and the callbacks of timers
 * that are due (under `mock.timers`, those `tick` made due), a few event-loop turns
 * deep. No clock time passes, so a check after it that something did NOT happen is
 * decided by what was scheduled, not by how fast the machine is.
 */
export async function settle(turns = 10) {
  for (let i = 0; i < turns; i++) await new Promise((r) => { setImmediate(r); });
}

/** A CourierClient wired to fakes. */
export async function makeClient(CourierClient, { routes = baseRoutes(), token = 'tok-1', getToken, ...rest } = {}) {
  const fetch = fakeFetch(routes);
  let transport;
  const tokens = [];
  const client = new CourierClient({
    baseUrl: 'http://courier.test', window: null, fetch,
    getToken: getToken ?? (async () => { tokens.push(token); return token; }),
    transportFactory: (h) => (transport = new FakeTransport(h)),
    backoff: { minMs: 1, maxMs: 5 },
    ...rest,
  });
  return { client, fetch, transport: () => transport, tokens };
}
