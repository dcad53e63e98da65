// The AsyncAPI 3.0 document (docs/asyncapi.json, served at GET /asyncapi.json): it parses
// with @asyncapi/parser without errors or warnings, the API serves it unchanged, and every
// payload real clients receive over Socket.IO and SSE, and every ack they get, is valid
// against the schema of its event (ajv). A client receiving an event the document does
// not describe fails the test, and so does a documented event the scenario never saw.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { Parser } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

import { PASSWORD, accessClaims, craftJwt, run, uniqueResourceName, useDeployment, waitFor } from './harness.mjs';
import { SseClient } from './realtime.mjs';
import { waitEvent } from './realtime-helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RAW = readFileSync(path.join(HERE, '..', '..', 'docs', 'asyncapi.json'), 'utf8');
const DOC = JSON.parse(RAW);
const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = uniqueResourceName().replaceAll('_', '-');

const d = useDeployment({
  mode: 'split',
  gateways: 1,
  env: {
    PRESENCE_GRACE_SECS: '1',
    S3_ENDPOINT: S3,
    S3_BUCKET: BUCKET,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'e2e',
    S3_SECRET_ACCESS_KEY: 'e2e-secret',
  },
});

// ---------------------------------------------------------------------------
// The document's schemas, per event

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(DOC, 'asyncapi');

const at = (ref) => ref.replace(/^#\//, '').split('/').reduce((v, k) => v[k], DOC);
/** The message object behind a channel message reference (itself a reference). */
const messageOf = (ref) => { const m = at(ref); return m.$ref ? { key: m.$ref.split('/').pop(), ...at(m.$ref) } : m; };
const validator = (key) => ajv.getSchema(`asyncapi#/components/messages/${key}/payload`)
  ?? assert.fail(`no payload schema for message ${key}`);

/** Server → client events per channel, and client → server events with their acks. */
const serverEvents = { chat: new Map(), events: new Map() };
const clientEvents = new Map();
for (const [id, op] of Object.entries(DOC.operations)) {
  const channel = op.channel.$ref.split('/').pop();
  for (const m of op.messages.map((r) => messageOf(r.$ref))) {
    if (op.action === 'send') serverEvents[channel].set(m.name, validator(m.key));
    else {
      const ack = messageOf(op.reply.messages[0].$ref);
      clientEvents.set(m.name, { request: validator(m.key), ack: validator(ack.key), id });
    }
  }
}

/** Asserts `payload` is valid for `validate`, naming `what` and ajv's errors. */
function assertValid(validate, payload, what) {
  if (!validate(payload)) {
    assert.fail(`${what} breaks its AsyncAPI schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(payload)}`);
  }
}

/** Every event of every client, checked against its channel's schemas; returns the names seen. */
function assertEventsValid(clients, channel) {
  const seen = new Set();
  for (const c of clients) {
    for (const e of c.events) {
      const validate = serverEvents[channel].get(e.event);
      assert.ok(validate, `${c.label} received ${e.event}, which the AsyncAPI ${channel} channel does not describe`);
      assertValid(validate, e.payload, `${c.label}: ${e.event}`);
      seen.add(e.event);
    }
  }
  return seen;
}

/** Emits a client event and checks its payload and its ack against the document. */
async function emit(client, event, payload) {
  const spec = clientEvents.get(event);
  assert.ok(spec, `${event} is not a client event of the AsyncAPI document`);
  assertValid(spec.request, payload, `${event} request`);
  const ack = await client.ack(event, payload);
  assertValid(spec.ack, ack, `${event} ack`);
  return ack;
}

// ---------------------------------------------------------------------------

test('the AsyncAPI document parses without errors or warnings', async () => {
  const { document, diagnostics } = await new Parser().parse(RAW);
  const bad = diagnostics.filter((x) => x.severity <= 1)
    .map((x) => `${x.severity === 0 ? 'error' : 'warning'} ${x.code} at ${x.path.join('.')}: ${x.message}`);
  assert.deepEqual(bad, []);
  assert.ok(document, 'a parsed document');
  assert.equal(document.version(), '3.0.0');
  assert.deepEqual(document.channels().all().map((c) => c.address()).sort(), ['/chat', '/events']);
  assert.ok(serverEvents.chat.size >= 14 && clientEvents.size >= 4, 'events read from the operations');
});

d.test('GET /asyncapi.json serves the document as committed', async () => {
  const res = await d.api('GET', '/asyncapi.json');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.deepEqual(res.body, DOC);
});

d.test('every payload and ack real clients get matches its AsyncAPI schema', { timeout: 90_000 }, async () => {
  assert.ok((await fetch(`${S3}/${BUCKET}`, { method: 'PUT' })).ok, `creating bucket ${BUCKET}`);
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const sseNames = [...serverEvents.events.keys()];
  const bobSse = new SseClient(d.gateway(0), { token: bob.accessToken, label: 'bob sse', names: sseNames });
  d.clients.add(bobSse);
  await bobSse.opened();
  const aliceSocket = await d.connect(0, alice.accessToken, { label: 'alice' });
  let bobSocket = await d.connect(0, bob.accessToken, { label: 'bob' });
  const carolSocket = await d.connect(0, carol.accessToken, { label: 'carol' });
  const sockets = [aliceSocket, bobSocket, carolSocket];
  const as = (account) => ({ token: account.accessToken });
  const api = async (method, url, account, body, status) => {
    const res = await d.api(method, url, { ...as(account), body });
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };

  // Chats: chat.updated for both.
  const direct = await d.createDirect(alice.accessToken, bob.user.id);
  const group = await d.createGroup(alice.accessToken, 'asyncapi', [bob.user.id, carol.user.id]);
  await waitEvent(carolSocket, 'chat.updated', (p) => p.chat.id === group.id);

  // Typing, a plain send, a reply with a mention and an attachment, a forward.
  await emit(aliceSocket, 'chat.typing', { chatId: direct.id, isTyping: true });
  await waitEvent(bobSocket, 'chat.typing', (p) => p.chatId === direct.id && p.isTyping);
  const first = await d.send(alice.accessToken, direct.id, 'hello bob');
  const byCmid = (cmid) => (p) => p.message?.clientMessageId === cmid;
  const firstNew = (await waitEvent(bobSocket, 'chat.message.new', byCmid(first.clientMessageId))).payload;

  const bytes = Buffer.from(`asyncapi ${randomUUID()}`);
  const ticket = await api('POST', '/uploads', alice, { fileName: 'a.txt', contentType: 'text/plain', size: bytes.length }, 201);
  assert.equal((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: bytes })).status, 200);
  const groupFirst = randomUUID();
  await api('POST', `/chats/${group.id}/messages`, alice,
    { content: `@${bob.username} see the file`, clientMessageId: groupFirst, attachments: [ticket.id] }, 202);
  const rich = (await waitEvent(bobSocket, 'chat.message.new', byCmid(groupFirst))).payload.message;
  assert.equal(rich.attachments.length, 1, 'the attachment is in the event');
  await waitEvent(bobSocket, 'notification.new', (p) => p.notification.messageId === rich.id);
  const reply = randomUUID();
  await api('POST', `/chats/${group.id}/messages`, bob, { content: 'thanks', clientMessageId: reply, replyToId: rich.id }, 202);
  await waitEvent(aliceSocket, 'chat.message.new', (p) => byCmid(reply)(p) && p.message.replyTo?.id === rich.id);
  const fwd = randomUUID();
  await api('POST', `/chats/${direct.id}/messages`, bob,
    { clientMessageId: fwd, forwardOf: { chatId: group.id, messageId: rich.id } }, 202);
  await waitEvent(aliceSocket, 'chat.message.new', (p) => byCmid(fwd)(p) && p.message.forwardedFrom !== null);

  // Receipts: bob reads the direct chat; alice sees the status.
  await emit(bobSocket, 'chat.read', { chatId: direct.id, sequence: firstNew.message.sequence });
  await waitEvent(aliceSocket, 'chat.message.status', (p) => p.chatId === direct.id && p.status === 'read');

  // Lifecycle: edit, reaction, pin, delete.
  const msgUrl = `/chats/${group.id}/messages/${rich.id}`;
  await api('PATCH', msgUrl, alice, { content: `@${bob.username} @${carol.username} see the file` }, 202);
  await waitEvent(carolSocket, 'chat.message.updated', (p) => p.message.id === rich.id);
  await api('PUT', `${msgUrl}/reactions/thumbsup`, bob, undefined, 204);
  await waitEvent(aliceSocket, 'chat.reaction.updated', (p) => p.messageId === rich.id && p.added);
  await api('PUT', `/chats/${group.id}/pins/${rich.id}`, alice, undefined, 204);
  await waitEvent(bobSocket, 'chat.pins.updated', (p) => p.messageId === rich.id && p.pinned);
  await api('DELETE', msgUrl, alice, undefined, 202);
  await waitEvent(bobSocket, 'chat.message.deleted', (p) => p.messageId === rich.id);
  // A moderator's delete (an admin granted by `courier admin grant`): `deletedBy`.
  const mod = await d.register('moderator');
  await run(d.binary('courier'), ['admin', 'grant', mod.username], { env: d.env(), cwd: d.created.cwd });
  const spam = await d.send(carol.accessToken, group.id, 'spam');
  const spamId = (await waitEvent(bobSocket, 'chat.message.new', byCmid(spam.clientMessageId))).payload.message.id;
  await api('DELETE', `/admin/messages/${spamId}`, mod, undefined, 202);
  await waitEvent(bobSocket, 'chat.message.deleted', (p) => p.messageId === spamId && p.deletedBy === 'moderator');

  // A webhook post: a message with `bot`.
  const hook = await api('POST', `/chats/${group.id}/hooks`, alice, { name: 'ci' }, 201);
  const hookPost = await d.api('POST', hook.url, { body: { content: 'build green' } });
  assert.equal(hookPost.status, 202);
  await waitEvent(bobSocket, 'chat.message.new', (p) => p.message.bot?.hookId === hook.id);

  // Chat settings: chat.settings to bob's own sockets and stream.
  await api('PUT', `/chats/${direct.id}/settings`, bob, { mutedUntil: '2999-01-01T00:00:00.000Z', archived: true }, 200);
  await waitEvent(bobSocket, 'chat.settings', (p) => p.chatId === direct.id && p.settings.archived);

  // A profile change: user.updated (with a presigned avatarUrl) to those sharing a chat.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  const avatar = await api('POST', '/uploads', alice, { fileName: 'me.png', contentType: 'image/png', size: png.length }, 201);
  assert.equal((await fetch(avatar.uploadUrl, { method: 'PUT', headers: avatar.headers, body: png })).status, 200);
  await api('PATCH', '/users/me', alice, { bio: 'asyncapi', avatarUploadId: avatar.id }, 200);
  await waitEvent(bobSocket, 'user.updated', (p) => p.user.id === alice.user.id && p.user.avatarUrl && p.user.bio === 'asyncapi');

  // chat.sync, auth.refresh, and an error ack.
  const sync = await emit(bobSocket, 'chat.sync', { chats: { [direct.id]: 0, [group.id]: 0 } });
  assert.equal(sync.status, 'ok');
  assert.ok(sync.messages.some((m) => m.bot) && sync.messages.some((m) => m.deletedAt), 'sync has a bot message and a tombstone');
  assert.equal((await emit(aliceSocket, 'auth.refresh', { token: alice.accessToken })).status, 'ok');
  assert.equal((await emit(aliceSocket, 'chat.read', { chatId: randomUUID(), sequence: 1 })).status, 'error');

  // Chat management: rename, role, removal; then carol's presence goes offline.
  await api('PATCH', `/chats/${group.id}`, alice, { title: 'renamed' }, 200);
  await api('PATCH', `/chats/${group.id}/participants/${bob.user.id}`, alice, { role: 'admin' }, 200);
  await waitEvent(bobSocket, 'chat.updated', (p) => p.chat.title === 'renamed' && p.chat.participants.some((x) => x.role === 'admin'));
  carolSocket.close();
  await waitEvent(aliceSocket, 'presence.update', (p) => p.userId === carol.user.id && p.status === 'offline');
  const carolAgain = await d.connect(0, carol.accessToken, { label: 'carol again' });
  sockets.push(carolAgain);
  await waitEvent(aliceSocket, 'presence.update', (p) => p.userId === carol.user.id && p.status === 'online');
  await api('DELETE', `/chats/${group.id}/participants/${carol.user.id}`, alice, undefined, 204);
  await waitEvent(carolAgain, 'chat.removed', (p) => p.chatId === group.id);

  // Reconnect with an offset: the missed message is replayed, then session.recovered true.
  const lastOffset = bobSocket.events.filter((e) => e.payload?.offset).at(-1).payload.offset;
  bobSocket.close();
  const missed = await d.send(alice.accessToken, direct.id, 'while you were away');
  await waitEvent(aliceSocket, 'chat.message.saved', byCmid(missed.clientMessageId));
  bobSocket = await d.connect(0, bob.accessToken, { label: 'bob again', auth: { offset: lastOffset } });
  sockets.push(bobSocket);
  await waitEvent(bobSocket, 'session.recovered', (p) => p.recovered === true);
  assert.ok(bobSocket.received('chat.message.new', { clientMessageId: missed.clientMessageId }).length === 1);

  // A token that expires within the minute: auth.expiring at once.
  const soon = craftJwt(accessClaims(alice.user.id, 30), d.jwtSecret);
  const expiring = await d.connect(0, soon, { label: 'alice (expiring)' });
  sockets.push(expiring);
  await waitEvent(expiring, 'auth.expiring');

  // A session logged out: auth.revoked to its socket, which is then closed.
  const phone = await d.api('POST', '/auth/login',
    { body: { username: alice.username, password: alice.password ?? PASSWORD, deviceName: 'asyncapi phone' } });
  assert.equal(phone.status, 200, JSON.stringify(phone.body));
  const phoneSocket = await d.connect(0, phone.body.accessToken, { label: 'alice (phone)' });
  sockets.push(phoneSocket);
  assert.equal((await d.api('POST', '/auth/logout', { token: phone.body.accessToken })).status, 204);
  await waitEvent(phoneSocket, 'auth.revoked', (p) => p.reason === 'logout');

  await waitFor(() => bobSse.received('chat.message.new').some((p) => p.message.bot), 10_000,
    { message: 'bob sse got the hook message' });
  const seen = assertEventsValid(sockets, 'chat');
  const seenSse = assertEventsValid([bobSse], 'events');
  const unseen = [...serverEvents.chat.keys()].filter((n) => !seen.has(n));
  assert.deepEqual(unseen, [], 'every documented Socket.IO event was received and checked');
  assert.ok(seenSse.size >= 8, `SSE events checked: ${[...seenSse]}`);
});
