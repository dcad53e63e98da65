// Smoke test of the built SDK against a real stack: two users connect, send, receive, edit and
// react, and each store ends equal to the server's history. With `--api URL` it uses a running
// api/courier; otherwise it starts an isolated all-in-one deployment with tests/e2e's harness
// (COURIER_BIN_DIR names the binaries). Run: `npm run build && node scripts/smoke.mjs`.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { CourierClient } from '../dist/index.js';

const at = process.argv.indexOf('--api');
let api = at > 0 ? process.argv[at + 1] : null;
let deployment = null;
/** S3 stand-in and bucket for the upload step (only with a deployment of our own). */
const s3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
let bucket = null;
if (!api) {
  const { Deployment, uniqueResourceName } = await import('../../../tests/e2e/harness.mjs');
  bucket = uniqueResourceName().replaceAll('_', '-');
  deployment = new Deployment({ mode: 'all-in-one', env: { S3_ENDPOINT: s3, S3_BUCKET: bucket,
    S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'e2e', S3_SECRET_ACCESS_KEY: 'e2e-secret' } });
  await deployment.start();
  api = deployment.apiUrl;
  const made = await fetch(`${s3}/${bucket}`, { method: 'PUT' });
  assert.ok(made.ok, `creating bucket ${bucket}: ${made.status}`);
}

/** Polls `fn` until it returns truthy (the SDK's store converging), or fails after `ms`. */
async function until(what, fn, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

try {
  const suffix = randomBytes(4).toString('hex');
  const [a, b] = await Promise.all(['alice', 'bob'].map((n) => CourierClient.register(api,
    { username: `${n}_${suffix}`, password: 'correct-horse-1', displayName: n })));
  const alice = new CourierClient({ baseUrl: api, getToken: async () => a.accessToken, window: null });
  const bob = new CourierClient({ baseUrl: api, getToken: async () => b.accessToken, window: null });
  // Bob's second device on the SSE transport (EventSource from tests/e2e's `eventsource`).
  const { EventSource } = await import('../../../tests/e2e/node_modules/eventsource/dist/index.js');
  const bobSse = new CourierClient({ baseUrl: api, getToken: async () => b.accessToken, window: null,
    transport: 'sse', eventSource: EventSource });
  const states = [];
  alice.on('state', (s) => states.push(s));
  await Promise.all([alice.connect(), bob.connect(), bobSse.connect()]);
  assert.deepEqual(states, ['connecting', 'connected']);

  const chat = await alice.createDirectChat(b.user.id);
  await until('bob learns of the chat', () => bob.store.chat(chat.id));
  const entries = ['one', 'two', 'three'].map((t) => alice.send(chat.id, { content: t }));
  assert.equal(alice.store.messages(chat.id).filter((m) => m.pending).length, 3, 'optimistic echo');
  await until('alice: all sent', () => entries.every((e) => e.state !== 'sending'));
  await until('bob receives 3', () => bob.store.messages(chat.id).length === 3);
  assert.deepEqual(bob.store.messages(chat.id).map((m) => m.content), ['one', 'two', 'three']);
  assert.equal(bob.store.chat(chat.id).unreadCount, 3);

  const second = bob.store.messages(chat.id)[1];
  await alice.edit(chat.id, second.id, 'two (edited)');
  await until('bob sees the edit', () => bob.store.message(chat.id, second.id)?.editedAt);
  await bob.react(chat.id, second.id, 'thumbsup');
  await until('alice sees the reaction', () => alice.store.message(chat.id, second.id)?.reactions.length);
  assert.deepEqual(alice.store.message(chat.id, second.id).reactions, [{ emoji: 'thumbsup', count: 1, me: false }]);
  await until('bob: reaction me', () => bob.store.message(chat.id, second.id)?.reactions[0]?.me === true);
  await bob.markRead(chat.id, 3);
  await until('alice: read receipts', () => entries.every((e) => e.state === 'read'));

  const history = await fetch(`${api}/chats/${chat.id}/messages`, { headers: { authorization: `Bearer ${a.accessToken}` } })
    .then((r) => r.json());
  const strip = (ms) => ms.map((m) => ({ seq: m.sequence, id: m.id, content: m.content }));
  assert.deepEqual(strip(alice.store.messages(chat.id)), strip(history.messages));
  assert.deepEqual(strip(bob.store.messages(chat.id)), strip(history.messages));
  await until('SSE device converges', () => JSON.stringify(strip(bobSse.store.messages(chat.id))) === JSON.stringify(strip(history.messages)));
  assert.equal(bobSse.store.message(chat.id, second.id).reactions[0]?.me, true);
  const sseEntry = bobSse.send(chat.id, { content: 'from SSE' });
  await until('SSE send saved', () => sseEntry.state !== 'sending');
  await until('alice gets the SSE send', () => alice.store.messages(chat.id).at(-1)?.content === 'from SSE');
  if (bucket) {
    const uploadId = await alice.upload({ name: 'hello.txt', type: 'text/plain', data: new TextEncoder().encode('hello, bob') });
    alice.send(chat.id, { content: 'a file', attachments: [uploadId] });
    const got = await until('bob gets the attachment', () => bob.store.messages(chat.id).find((m) => m.attachments.length));
    assert.equal(got.attachments[0].id, uploadId);
    assert.equal(await fetch(got.attachments[0].url).then((r) => r.text()), 'hello, bob');
  }
  bobSse.disconnect();
  alice.disconnect();
  bob.disconnect();
  console.log('smoke: ok', { states, outbox: entries.map((e) => e.state) });
} finally {
  if (deployment) await deployment.stop();
}
