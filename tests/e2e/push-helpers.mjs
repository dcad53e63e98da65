// Helpers of the push scenarios (push.test.mjs): registering subscriptions with Courier,
// the pusher's Prometheus counters (deltas since a mark), the push queues drained (the
// observable end of the pusher's work: nothing ready, nothing unacknowledged, in the
// queue, its retry, flush and delay queues), a message as persisted, and the checks of a
// notification's payload.

import assert from 'node:assert/strict';

import { assertTimestamp, assertUuid } from './contract.mjs';
import { waitFor } from './util.mjs';

/** The chat id in the simple form the design uses for `Topic` (32 hex digits). */
export const simple = (uuid) => uuid.replaceAll('-', '');

/** POST /push/subscriptions as `account`; asserts 201 {id, type, createdAt}; resolves the body. */
export async function register(dep, account, body, type) {
  const res = await dep.api('POST', '/push/subscriptions', { token: account.accessToken, body });
  assert.equal(res.status, 201, `POST /push/subscriptions: ${res.status} ${JSON.stringify(res.body)}`);
  assertUuid(res.body.id, 'PushSubscription.id');
  assert.equal(res.body.type, type);
  assertTimestamp(res.body.createdAt, 'PushSubscription.createdAt');
  return res.body;
}

/** A browser subscription from `webpush` registered for `account`: {sub, id}. */
export async function subscribeWebPush(dep, webpush, account) {
  const sub = webpush.newSubscription();
  const { id } = await register(dep, account, sub, 'webpush');
  return { sub, id };
}

/** An FCM token from `fcm` registered for `account`: {token, id}. */
export async function subscribeFcm(dep, fcm, account) {
  const token = fcm.newToken();
  const { id } = await register(dep, account, { type: 'fcm', token }, 'fcm');
  return { token, id };
}

/** GET /push/subscriptions as `account`; asserts 200 and an array; resolves it. */
export async function listSubscriptions(dep, account) {
  const res = await dep.api('GET', '/push/subscriptions', { token: account.accessToken });
  assert.equal(res.status, 200, `GET /push/subscriptions: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body), `GET /push/subscriptions body: ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * Parses the Prometheus text format into a `(name, labels) => sum` lookup (absent: 0);
 * its `series` lists every sample as {name, labels, value}.
 */
function parseMetrics(text) {
  const series = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    series.push({ name: m[1], labels, value: Number(m[3]) });
  }
  const lookup = (name, want = {}) => series
    .filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
  lookup.series = series;
  return lookup;
}

/** The pusher's counters at `url` (its METRICS_PORT), as deltas since `mark()`. */
export class PushMetrics {
  constructor(url) { this.url = url; this.base = () => 0; }

  async scrape() {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, `GET ${this.url}/metrics: ${res.status}`);
    return parseMetrics(await res.text());
  }

  async mark() { this.base = await this.scrape(); return this; }

  /** How much counter `name` (summed over series matching `labels`) grew since the mark. */
  async delta(name, labels = {}) { return (await this.scrape())(name, labels) - this.base(name, labels); }

  /** Waits until `delta(name, labels)` ≥ `atLeast`; resolves the delta. */
  async waitDelta(name, labels, atLeast = 1, timeoutMs = 20_000) {
    let last = 0;
    return waitFor(async () => { last = await this.delta(name, labels); return last >= atLeast && last; }, timeoutMs,
      { intervalMs: 100, message: () => `${name}${JSON.stringify(labels)} to grow by ${atLeast} (grew by ${last})` });
  }
}

/** The queues whose name starts with `prefix` in `dep`'s vhost: [{name, messages, unacked}]. */
export async function pushQueues(dep, prefix) {
  const { stdout } = await dep.infra.rabbitmqctl(['-q', 'list_queues', '--no-table-headers', '-p', dep.vhost,
    'name', 'messages', 'messages_unacknowledged']);
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([name]) => name?.startsWith(prefix))
    .map(([name, messages, unacked]) => ({ name, messages: Number(messages), unacked: Number(unacked) }));
}

/**
 * Waits until the pusher has nothing left: every queue named `prefix*` but the dead
 * letters is empty with nothing unacknowledged, on two readings in a row (a message
 * expiring from a flush or retry queue is dead-lettered back into the main queue).
 * Resolves the last reading (the DLQ included).
 */
export async function waitDrained(dep, prefix, timeoutMs = 30_000) {
  let streak = 0;
  let queues = [];
  await waitFor(async () => {
    queues = await pushQueues(dep, prefix);
    const idle = queues.some((q) => q.name === prefix)
      && queues.every((q) => q.name.endsWith('.dlq') || (q.messages === 0 && q.unacked === 0));
    streak = idle ? streak + 1 : 0;
    return streak >= 2;
  }, timeoutMs, { intervalMs: 250, message: () => `push queues drained: ${JSON.stringify(queues)}` });
  return queues;
}

/** The message with `clientMessageId` in `chatId` as `token` reads it, once persisted. */
export function persisted(dep, token, chatId, clientMessageId, timeoutMs = 10_000) {
  return waitFor(async () => (await dep.history(token, chatId, { limit: 100 })).messages
    .find((m) => m.clientMessageId === clientMessageId), timeoutMs,
  { message: `message ${clientMessageId} persisted in ${chatId}` });
}

/** The newest message of `chatId` once it holds `count` messages. */
export async function latestOf(dep, token, chatId, count, timeoutMs = 15_000) {
  return waitFor(async () => {
    const { messages } = await dep.history(token, chatId, { limit: 100 });
    return messages.length >= count && messages.reduce((a, b) => (b.sequence > a.sequence ? b : a));
  }, timeoutMs, { message: `${count} messages persisted in ${chatId}` });
}

/**
 * A notification's payload against the message it announces (contract: Web Push body
 * `{chatId, messageId, title, body, unread, sentAt}`); `titleHas` a text the title holds.
 */
/**
 * A notification's payload. `group`: the sender of a group message, whose body reads
 * "Sender: text" under the group's title (a direct chat's body is the text, its title the
 * sender).
 */
export function assertPayload(p, { chatId, message, unread, titleHas, group }) {
  for (const f of ['chatId', 'messageId', 'title', 'body', 'unread', 'sentAt']) {
    assert.ok(Object.hasOwn(p, f), `payload lacks ${f}: ${JSON.stringify(p)}`);
  }
  assert.equal(p.chatId, chatId, 'payload.chatId');
  assert.equal(p.messageId, message.id, 'payload.messageId is the latest message');
  const from = group && (group.sender.user.displayName ?? group.sender.user.username);
  assert.equal(p.body, group ? `${from}: ${message.content}` : message.content, 'payload.body');
  if (group) assert.equal(p.title, group.title, 'a group notification is titled by the group');
  assert.equal(p.unread, unread, 'payload.unread');
  assert.equal(Date.parse(p.sentAt), Date.parse(message.sentAt), `payload.sentAt ${p.sentAt} vs ${message.sentAt}`);
  assert.equal(typeof p.title, 'string');
  assert.ok(p.title.length > 0, 'payload.title is not empty');
  if (titleHas) assert.ok(p.title.includes(titleHas), `payload.title ${JSON.stringify(p.title)} names ${titleHas}`);
}

/** The Web Push delivery headers: Topic = the chat (simple form), a TTL, `urgency`. */
export function assertWebPushHeaders(push, { chatId, urgency }) {
  assert.equal(push.headers.topic, simple(chatId), 'Topic is the chat');
  assert.ok(push.headers.ttl > 0, `TTL ${push.headers.ttl}`);
  assert.equal(push.headers.urgency, urgency, 'Urgency');
  assert.ok(Buffer.byteLength(push.plaintext) <= 3000, `payload of ${Buffer.byteLength(push.plaintext)} bytes`);
}
