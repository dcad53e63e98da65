// Helpers of groups.test.mjs (large groups, issue 27): members minted in SQL (fast set-up
// of hundreds of users), a group created with its participants added in batches, sockets
// spread over the gateways with mixed transports, and per-connection checks (each message
// once, in per-chat sequence order, offsets increasing).

import assert from 'node:assert/strict';

import { EVENTS, assertChat } from './contract.mjs';
import { mintRecipients } from './push-bench-load.mjs';
import { assertIncreasing, recoverableOf } from './realtime.mjs';

/** Participants per `POST /chats` and per `POST /chats/:id/participants` in the set-up. */
export const BATCH = 100;

/**
 * A pool of users for one deployment: `owner` registered over REST, `members` minted in
 * SQL (same password hash) with signed tokens; each is {user: {id, ...}, accessToken}.
 */
export async function userPool(d, n) {
  const { sender, recipients } = await mintRecipients(d, n);
  return { owner: sender, members: recipients };
}

/**
 * Creates a group owned by `owner` with `members` (accounts): the first BATCH in
 * `POST /chats`, the rest added BATCH at a time. Resolves the final `Chat`.
 */
export async function makeGroup(d, owner, members, title = 'large group') {
  const ids = members.map((m) => m.user.id);
  let chat = await d.createGroup(owner.accessToken, title, ids.slice(0, BATCH));
  for (let i = BATCH; i < ids.length; i += BATCH) {
    const res = await d.api('POST', `/chats/${chat.id}/participants`,
      { token: owner.accessToken, body: { userIds: ids.slice(i, i + BATCH) } });
    assert.equal(res.status, 200, `add participants ${i}..: ${res.status} ${JSON.stringify(res.body)}`);
    chat = res.body;
  }
  assertChat(chat, { type: 'group', participantIds: [owner.user.id, ...ids] });
  return chat;
}

/** Socket options of connection `i`: even ones WebSocket only, odd ones long-polling only. */
export const transportOf = (i) => (i % 2 === 0 ? ['websocket'] : ['polling']);

/**
 * Connects one socket per account, account i to gateway i mod 2 with `transportOf(i)`;
 * resolves the clients in the same order.
 */
export function connectSpread(d, accounts, { offset = 0 } = {}) {
  return Promise.all(accounts.map((a, i) => {
    const k = i + offset;
    const gw = k % 2;
    return d.connect(gw, a.accessToken, {
      transports: transportOf(k), label: `${a.user.displayName ?? a.username}@gw${gw + 1}/${transportOf(k)[0]}`,
    });
  }));
}

/** The message events (new or saved) of `client` about `chatId`, in arrival order: {event, message}. */
export const messageEvents = (client, chatId) => client.events
  .filter((e) => (e.event === EVENTS.NEW || e.event === EVENTS.SAVED) && e.payload?.chatId === chatId)
  .map((e) => ({ event: e.event, message: e.payload.message }));

/**
 * Asserts what one connection of `userId` got of `chatId`: each of `sent` (clientMessageIds)
 * exactly once, as `chat.message.saved` when `userId` sent it and as `.new` otherwise, in
 * increasing sequence order; and its recoverable events' offsets strictly increase.
 */
export function assertConnectionGot(client, userId, chatId, sent) {
  const got = messageEvents(client, chatId);
  const ids = got.map((e) => e.message.clientMessageId);
  assert.deepEqual([...ids].sort(), [...sent.map((s) => s.clientMessageId)].sort(),
    `${client.label}: every message of the chat exactly once`);
  const seqs = got.map((e) => e.message.sequence);
  for (let i = 1; i < seqs.length; i++) {
    assert.ok(seqs[i - 1] < seqs[i], `${client.label}: sequence ${seqs[i]} after ${seqs[i - 1]} (per-chat order)`);
  }
  for (const e of got) {
    const own = e.message.senderId === userId;
    assert.equal(e.event, own ? EVENTS.SAVED : EVENTS.NEW,
      `${client.label}: message ${e.message.sequence} from ${own ? 'itself' : 'another member'} as ${e.event}`);
  }
  assertIncreasing(recoverableOf(client.events, client.label).map((e) => e.offset), `${client.label} offsets`);
}
