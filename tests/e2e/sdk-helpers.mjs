// Shared by the SDK end-to-end tests (sdk-*.test.mjs): SDK clients of
// `@courier-chat/client` (clients/js, imported from its built dist) on a deployment,
// with a counting `fetch`, an event log and outbox states; a paced conversation through
// the SDK outbox; and the final check: each client's store of a chat equals the server's
// history (REST, paged by `after`), with no duplicate and no hole, and every message sent
// through the outbox stored once and `sent` (or further).
//
// The SDK must be built first: `cd clients/js && npm ci && npm run build`.

import assert from 'node:assert/strict';

import { CourierClient, MemoryStorage } from '../../clients/js/dist/index.js';
import { accessClaims, craftJwt, sleep, waitFor } from './harness.mjs';

export { CourierClient, MemoryStorage };

/** Outbox states after the server persisted the message. */
export const DONE = new Set(['sent', 'delivered', 'read']);
const RANK = { sending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };

/**
 * A `fetch` that records every call ({method, path, status, at, clientMessageId of a JSON
 * body}; status 0 for a network error) in `calls` before answering as the global one does.
 */
export function countingFetch(calls = []) {
  const wrapped = async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const method = (init.method ?? (typeof input === 'object' && input.method) ?? 'GET').toUpperCase();
    const rec = { method, path: url.pathname, status: null, at: Date.now(), clientMessageId: null };
    if (typeof init.body === 'string') {
      try { rec.clientMessageId = JSON.parse(init.body)?.clientMessageId ?? null; } catch { /* not JSON */ }
    }
    calls.push(rec);
    try {
      const res = await fetch(input, init);
      rec.status = res.status;
      return res;
    } catch (err) {
      rec.status = 0;
      throw err;
    }
  };
  wrapped.calls = calls;
  return wrapped;
}

/** A getToken that crafts a fresh token of `account` (ttl seconds) signed with the deployment's secret. */
export const craftedTokens = (d, account, ttl = 3600) => async () => craftJwt(accessClaims(account.user.id, ttl), d.jwtSecret);

/**
 * An SDK client of `account` on deployment `d`, REST at the api and Socket.IO at
 * `gatewayUrl`; records its events (`log`: [{name, payload, at}]), the `recovered`,
 * `resync` and `state` events, outbox states by clientMessageId (the highest seen) and its fetches.
 * `options` go to the CourierClient (e.g. `getToken`, `storage`).
 */
export function sdkClient(d, account, { label, gatewayUrl = d.gateway(0), ...options } = {}) {
  const calls = [];
  const client = new CourierClient({
    baseUrl: d.apiUrl,
    gatewayUrl,
    getToken: options.getToken ?? craftedTokens(d, account),
    storage: options.storage ?? new MemoryStorage(),
    backoff: { minMs: 200, maxMs: 2000 },
    socketTransports: ['websocket'],
    fetch: countingFetch(calls),
    ...options,
  });
  const t = {
    label: label ?? account.user.displayName,
    account,
    client,
    calls,
    log: [],
    recovered: [],
    resyncs: [], // times of 'resync' events
    states: [],
    errors: [],
    outboxStates: new Map(),
    entries: new Map(),
    sent: [], // clientMessageIds sent through this client's outbox, in order
  };
  const noteEntry = (e) => {
    const prev = t.outboxStates.get(e.clientMessageId);
    if (prev === undefined || (RANK[e.state] ?? -1) >= (RANK[prev] ?? -1)) t.outboxStates.set(e.clientMessageId, e.state);
  };
  client.on('event', (name, payload) => t.log.push({ name, payload, at: Date.now() }));
  client.on('recovered', (info) => t.recovered.push({ ...info, at: Date.now() }));
  client.on('resync', () => t.resyncs.push(Date.now()));
  client.on('state', (state, info) => t.states.push({ state, reason: info?.reason, at: Date.now() }));
  client.on('error', (err) => t.errors.push(err));
  client.on('outbox', (entries) => { for (const e of entries) noteEntry(e); });

  /** Sends through the outbox; resolves nothing (the entry is kept in `entries`). */
  t.send = (chatId, content) => {
    const entry = client.send(chatId, { content });
    assert.ok(entry?.clientMessageId, `${t.label}: send returned no outbox entry`);
    t.entries.set(entry.clientMessageId, entry);
    t.sent.push({ chatId, clientMessageId: entry.clientMessageId, content });
    noteEntry(entry);
    return entry;
  };
  /** The highest outbox state seen for `clientMessageId` (events, or the entry itself). */
  t.stateOf = (clientMessageId) => {
    const entry = t.entries.get(clientMessageId);
    if (entry) noteEntry(entry);
    return t.outboxStates.get(clientMessageId);
  };
  /** How many of this client's sends are not yet sent (or further). */
  t.unsent = () => t.sent.filter((s) => !DONE.has(t.stateOf(s.clientMessageId))).length;
  /** Fetches answered `status` (a number) on POST .../messages. */
  t.sendStatuses = (status) => calls.filter((c) => c.method === 'POST' && /^\/chats\/[^/]+\/messages$/.test(c.path)
    && c.status === status).length;
  t.close = () => client.disconnect();
  return t;
}

/** Connects the clients (resolves once each is connected and synced); closes them at the end of `t`. */
export async function connectAll(testContext, clients) {
  testContext?.after?.(() => { for (const c of clients) c.close(); });
  await Promise.all(clients.map((c) => c.client.connect()));
  for (const c of clients) assert.equal(c.client.state, 'connected', `${c.label} connected`);
}

/** Every message of `chatId` from the server: GET /chats/:id/messages?after=... paged by 100. */
export async function serverHistory(d, token, chatId) {
  const all = [];
  let after = 0;
  for (;;) {
    const page = await d.history(token, chatId, { after, limit: 100 });
    all.push(...page.messages);
    if (!page.hasMore) return all;
    assert.ok(page.messages.length > 0, 'hasMore with an empty page');
    after = page.messages[page.messages.length - 1].sequence;
  }
}

/** The fields compared between a store message and a history message. */
export function shape(m) {
  return {
    id: m.id,
    sequence: m.sequence,
    senderId: m.senderId,
    clientMessageId: m.clientMessageId ?? null,
    content: m.deletedAt ? null : m.content,
    editedAt: m.editedAt ?? null,
    deleted: Boolean(m.deletedAt),
    reactions: (m.reactions ?? []).map((r) => `${r.emoji}:${r.count}`).sort(),
  };
}

/** Problems of a store's message list: duplicates (id or sequence), holes, pending ones. */
export function storeProblems(list) {
  const problems = [];
  const ids = new Set();
  const seqs = new Set();
  let prev = 0;
  for (const m of list) {
    if (m.sequence == null || m.id == null || m.pending) {
      problems.push(`pending/unsaved message ${m.clientMessageId} (${m.pending ?? 'no sequence'})`);
      continue;
    }
    if (ids.has(m.id)) problems.push(`duplicate id ${m.id} (sequence ${m.sequence})`);
    if (seqs.has(m.sequence)) problems.push(`duplicate sequence ${m.sequence}`);
    if (m.sequence !== prev + 1) problems.push(`hole or disorder: ${m.sequence} after ${prev}`);
    ids.add(m.id);
    seqs.add(m.sequence);
    prev = m.sequence;
  }
  return problems;
}

/** Whether the store of `c` for `chatId` matches `history` (same shapes, in order). */
function storeMatches(c, chatId, history) {
  const mine = c.client.store.messages(chatId).map(shape);
  return JSON.stringify(mine) === JSON.stringify(history.map(shape));
}

/**
 * Pages older history into `c`'s store (`loadHistory` with `before`, as a UI scrolling
 * back) while `store.hasMoreBefore(chatId)`: for a client that started (or restarted) after
 * the chat had messages, whose store holds what it saw since, back to where it started.
 */
async function loadOlder(c, chatId) {
  for (let page = 0; c.client.store.hasMoreBefore(chatId); page++) {
    assert.ok(page < 100, `${c.label}: hasMoreBefore(${chatId}) stays true`);
    const first = c.client.store.messages(chatId).find((m) => m.sequence != null)?.sequence;
    await c.client.loadHistory(chatId, first === undefined ? {} : { before: first });
  }
}

/**
 * The final check. For each chat of `chatIds`: the server's history (REST); each client's
 * store equals it exactly, after waiting (up to `timeoutMs`) for the stores to catch up:
 * same ids, sequences, senders, contents, edits, deletes and reaction counts, no duplicate,
 * no hole, nothing pending (clients in `pageBack` first page older history in; the others
 * must hold it all already: `hasMoreBefore` false). Every message each client sent through its outbox is in the
 * history exactly once (by clientMessageId) with its content, in send order per chat, and
 * its outbox state is sent, delivered or read. Resolves {chatId: history}.
 */
export async function assertStoresEqualHistory(d, token, clients, chatIds, { timeoutMs = 20_000, pageBack = [] } = {}) {
  // Outbox: every entry done (its chat.message.saved arrived), then the history.
  for (const c of clients) {
    await waitFor(() => c.unsent() === 0, timeoutMs, {
      message: () => `${c.label}: outbox entries not sent: ${c.sent.filter((s) => !DONE.has(c.stateOf(s.clientMessageId)))
        .slice(0, 5).map((s) => `${s.clientMessageId}=${c.stateOf(s.clientMessageId)}`).join(', ')}`,
    });
  }
  const histories = {};
  for (const chatId of chatIds) histories[chatId] = await serverHistory(d, token, chatId);

  // Each send persisted exactly once, in send order per chat.
  for (const c of clients) {
    const lastSeq = new Map(); // per chat: the outbox keeps a client's sends in order
    for (const s of c.sent) {
      const history = histories[s.chatId] ?? await serverHistory(d, token, s.chatId);
      const found = history.filter((m) => m.clientMessageId === s.clientMessageId);
      assert.equal(found.length, 1, `${c.label}: ${s.clientMessageId} ("${s.content}") in history ${found.length} times`);
      assert.equal(found[0].senderId, c.account.user.id, `${c.label}: sender of ${s.clientMessageId}`);
      if (!found[0].deletedAt && !found[0].editedAt) assert.equal(found[0].content, s.content);
      assert.ok(found[0].sequence > (lastSeq.get(s.chatId) ?? 0),
        `${c.label}: "${s.content}" persisted out of send order in ${s.chatId}`);
      lastSeq.set(s.chatId, found[0].sequence);
    }
  }

  for (const chatId of chatIds) {
    const history = histories[chatId];
    assert.deepEqual(storeProblems(history), [], `the server's history of ${chatId} itself`);
    for (const c of clients) {
      if (!c.client.store.chat(chatId)) continue; // not a member
      if (pageBack.includes(c)) await loadOlder(c, chatId);
      else assert.equal(c.client.store.hasMoreBefore(chatId), false, `${c.label}: hasMoreBefore(${chatId}) of a store that saw it all`);
      try {
        await waitFor(() => storeMatches(c, chatId, history), timeoutMs, { intervalMs: 50, message: 'store = history' });
      } catch { /* the exact difference is asserted below */ }
      const list = c.client.store.messages(chatId);
      assert.deepEqual(storeProblems(list), [], `${c.label}: store of ${chatId}: duplicates, holes or pending`);
      assert.deepEqual(list.map(shape), history.map(shape), `${c.label}: store of ${chatId} = server history`);
    }
  }
  return histories;
}

/**
 * A conversation through the SDK outboxes: each of `lanes` ({client, chatId}) sends
 * `count` messages "<label> #<i>", keeping at most `window` of its sends unsent (so a
 * client whose socket is down stops once its window is full, and resumes when its
 * `chat.message.saved` events arrive). `paceMs` spaces a lane's sends (a conversation that
 * lasts), `until()` ends it early. Resolves when every lane has issued its messages (not
 * when they are sent).
 */
export function converse(lanes, {
  count = 30, window = 3, paceMs = 0, until = () => false, timeoutMs = 45_000,
} = {}) {
  return Promise.all(lanes.map(async ({ client, chatId }) => {
    for (let i = 1; i <= count && !until(); i++) {
      if (paceMs && i > 1) await sleep(paceMs);
      await waitFor(() => client.unsent() < window, timeoutMs, {
        intervalMs: 10, message: () => `${client.label}: outbox window stays full (${client.unsent()} unsent)`,
      });
      client.send(chatId, `${client.label} #${i}`);
    }
  }));
}

/** Waits until `c`'s store holds a saved message with `clientMessageId` in `chatId`; resolves it. */
export function storeHas(c, chatId, clientMessageId, timeoutMs = 20_000) {
  return waitFor(() => c.client.store.messages(chatId)
    .find((m) => m.clientMessageId === clientMessageId && m.id && m.sequence != null), timeoutMs,
  { message: () => `${c.label}: ${clientMessageId} never saved in the store of ${chatId}` });
}

/** Events named `name` in `c`'s log (after `since`, ms since epoch). */
export const eventsOf = (c, name, since = 0) => c.log.filter((e) => e.name === name && e.at >= since);

/**
 * A device whose app reloads mid-test: `lane` is what `converse` sends through (the current
 * client); `reload(make)` waits for the current client's outbox writes, closes it, makes the
 * next one with `make()` (give it the same storage), carries over what was sent and the
 * outbox states seen, and connects it. Sends issued meanwhile go to the next client.
 * `generations`: every client so far (close them all at the end).
 */
export function reloadable(first) {
  const dev = { current: first, reloading: false, queued: [], generations: [first] };
  dev.lane = {
    get label() { return dev.current.label; },
    send: (chatId, content) => (dev.reloading ? dev.queued.push([chatId, content]) : dev.current.send(chatId, content)),
    unsent: () => dev.current.unsent() + dev.queued.length,
  };
  dev.reload = async (make) => {
    dev.reloading = true;
    const old = dev.current;
    await old.client.outboxFlushed();
    old.close();
    const next = make();
    next.sent.push(...old.sent);
    for (const [id, state] of old.outboxStates) next.outboxStates.set(id, state);
    dev.generations.push(next);
    dev.current = next;
    await next.client.connect();
    dev.reloading = false;
    for (const [chatId, content] of dev.queued.splice(0)) next.send(chatId, content);
    return next;
  };
  /** Every fetch of every generation. */
  dev.calls = () => dev.generations.flatMap((g) => g.calls);
  return dev;
}
