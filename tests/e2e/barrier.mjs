// Observable barriers for absence checks. Instead of watching a while for something
// that must not arrive (which proves nothing on a slow runner), a marker is published
// to each watched client's user after it: a gateway hands a user's pushes to the
// sockets in the order Redis published them, so once a client has the marker, anything
// published to it before has arrived too.

import assert from 'node:assert/strict';

import { waitFor } from './util.mjs';

/** Whether `client` got a `chat.updated` about `chatId`. */
const sawChatUpdate = (client, chatId) => (typeof client.sawChatUpdate === 'function'
  ? client.sawChatUpdate(chatId)
  : client.events.some((e) => e.event === 'chat.updated' && e.payload?.chat?.id === chatId));

/** Per deployment: the helper user every marker chat is made with. */
const partners = new WeakMap();

/**
 * Resolves once each of `clients` (a ChatClient from `d.connect`, an SseClient that
 * records `chat.updated`, or a FaultClient; each knows its token) got a marker published after this
 * call: a new group of its user with a helper user, announced by `chat.updated`.
 * Call it once whatever must not arrive would already have been published: after a
 * refused or answered ack, or once another client got an event of the same publish.
 */
export async function barrier(d, clients, timeoutMs = 10_000) {
  if (!partners.has(d)) partners.set(d, d.register('marker'));
  const partner = await partners.get(d);
  const byToken = new Map();
  for (const c of clients) {
    assert.ok(c.token, `${c.label}: a barrier needs the client's token`);
    byToken.set(c.token, [...(byToken.get(c.token) ?? []), c]);
  }
  await Promise.all([...byToken].map(async ([token, group]) => {
    const marker = await d.createGroup(token, 'barrier', [partner.user.id]);
    await Promise.all(group.map((c) => waitFor(() => sawChatUpdate(c, marker.id),
      timeoutMs, { intervalMs: 10, message: () => `${c.label}: no barrier marker (chat ${marker.id})` })));
  }));
}
