// Shared by the lifecycle tests: the lifecycle REST calls, a chat's event log as a
// socket received it, and the chat state derived from that log (to compare with history).

import assert from 'node:assert/strict';

import { EVENTS } from './contract.mjs';
import { waitFor } from './harness.mjs';

/** Server -> client events of a chat's timeline. */
export const LIFE = Object.freeze({
  NEW: EVENTS.NEW,
  SAVED: EVENTS.SAVED,
  UPDATED: 'chat.message.updated',
  DELETED: 'chat.message.deleted',
  REACTION: 'chat.reaction.updated',
  PINS: 'chat.pins.updated',
  CHAT_UPDATED: 'chat.updated',
  CHAT_REMOVED: 'chat.removed',
});

const TIMELINE = new Set([LIFE.NEW, LIFE.SAVED, LIFE.UPDATED, LIFE.DELETED, LIFE.REACTION, LIFE.PINS]);

/** Lifecycle calls; each asserts its success status and resolves the response. */
export async function edit(d, token, chatId, messageId, content) {
  const res = await d.api('PATCH', `/chats/${chatId}/messages/${messageId}`, { token, body: { content } });
  assert.equal(res.status, 202, `edit: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

export async function remove(d, token, chatId, messageId) {
  const res = await d.api('DELETE', `/chats/${chatId}/messages/${messageId}`, { token });
  assert.equal(res.status, 202, `delete: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

export async function react(d, token, chatId, messageId, emoji, add = true) {
  const res = await d.api(add ? 'PUT' : 'DELETE',
    `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`, { token });
  assert.equal(res.status, 204, `reaction: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

export async function pin(d, token, chatId, messageId, pinned = true) {
  const res = await d.api(pinned ? 'PUT' : 'DELETE', `/chats/${chatId}/pins/${messageId}`, { token });
  assert.equal(res.status, 204, `pin: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/**
 * Lifecycle calls for a concurrent burst on `chatId`: `change(method, path, token, body)`
 * on `/chats/:chatId/messages/<path>` accepts 202/204, and 404 (its message was deleted
 * by a call that ran first); `accepted()` counts the calls that were taken.
 */
export function burst(d, chatId) {
  let accepted = 0;
  const change = async (method, path, token, body) => {
    const res = await d.api(method, `/chats/${chatId}/messages/${path}`, { token, body });
    assert.ok([202, 204, 404].includes(res.status), `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.status !== 404) accepted += 1;
  };
  return { change, accepted: () => accepted };
}

/** Waits until a sent message is stored; resolves it as history shows it. */
export function stored(d, token, chatId, clientMessageId, timeoutMs = 10_000) {
  return waitFor(async () => (await d.history(token, chatId, { limit: 100 })).messages
    .find((m) => m.clientMessageId === clientMessageId), timeoutMs,
  { message: () => `message ${clientMessageId} never stored` });
}

/** A socket's timeline events of `chatId`, in arrival order: [{event, payload}]. */
export function timeline(client, chatId, { since = 0 } = {}) {
  return client.events.slice(since)
    .filter((e) => TIMELINE.has(e.event) && e.payload?.chatId === chatId)
    .map(({ event, payload }) => ({ event, payload }));
}

/** One line per event, for comparing logs across sockets (offsets and `me` differ). */
export function describeEvent({ event, payload }) {
  const { offset, ...rest } = payload;
  if (rest.message) {
    const { status, deliveredCount, readCount, reactions, ...m } = rest.message;
    rest.message = { ...m, reactions: (reactions ?? []).map(({ emoji, count }) => ({ emoji, count })) };
  }
  return `${event === LIFE.SAVED ? LIFE.NEW : event} ${JSON.stringify(rest)}`;
}

const reactionCounts = (reactions) => Object.fromEntries((reactions ?? []).map((r) => [r.emoji, r.count]));

/** The chat as a message map {id: {sequence, content, deleted, reactions}} from messages. */
export function stateOfMessages(messages) {
  return Object.fromEntries(messages.map((m) => [m.id, {
    sequence: m.sequence, content: m.content, deleted: m.deletedAt !== null, reactions: reactionCounts(m.reactions),
  }]));
}

/** The same map, derived by applying a socket's timeline events in order. */
export function stateOfEvents(events) {
  const s = {};
  for (const { event, payload } of events) {
    if (event === LIFE.NEW || event === LIFE.SAVED || event === LIFE.UPDATED) {
      Object.assign(s, stateOfMessages([payload.message]));
    } else if (event === LIFE.DELETED) {
      s[payload.messageId] = { ...s[payload.messageId], content: '', deleted: true, reactions: {} };
    } else if (event === LIFE.REACTION) {
      const r = { ...s[payload.messageId]?.reactions };
      if (payload.count > 0) r[payload.emoji] = payload.count; else delete r[payload.emoji];
      s[payload.messageId] = { ...s[payload.messageId], reactions: r };
    }
  }
  return s;
}

/** Every offset of a socket's log appears once, increasing. */
export function assertOnce(client, chatId) {
  const offsets = timeline(client, chatId).map((e) => e.payload.offset);
  assert.equal(new Set(offsets).size, offsets.length, `${client.label}: an event arrived twice`);
  const lines = timeline(client, chatId).filter((e) => e.event !== LIFE.PINS).map(describeEvent);
  assert.equal(new Set(lines).size, lines.length,
    `${client.label}: the same change twice:\n  ${lines.filter((l, i) => lines.indexOf(l) !== i).join('\n  ')}`);
}

/** Waits until every socket's derived state equals the history of the chat. */
export async function assertConverged(d, token, chatId, clients, timeoutMs = 20_000) {
  let expected;
  await waitFor(async () => {
    expected = stateOfMessages((await d.history(token, chatId, { limit: 100 })).messages);
    return clients.every((c) => JSON.stringify(sorted(stateOfEvents(timeline(c, chatId)))) === JSON.stringify(sorted(expected)));
  }, timeoutMs, {
    intervalMs: 100,
    message: () => clients.map((c) => `${c.label}: ${JSON.stringify(diff(stateOfEvents(timeline(c, chatId)), expected))}`).join('\n'),
  });
  return expected;
}

/** Ids in order, and each message's reactions in emoji order (arrival order differs). */
const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))
  .map(([id, m]) => [id, { ...m, reactions: Object.fromEntries(Object.entries(m.reactions ?? {}).sort()) }]));

function diff(got, want) {
  const out = {};
  for (const id of new Set([...Object.keys(got), ...Object.keys(want)])) {
    if (JSON.stringify(got[id]) !== JSON.stringify(want[id])) out[id] = { got: got[id], want: want[id] };
  }
  return out;
}
