// Attachments end to end, split mode (api, worker and gateway as separate processes)
// against a real S3-compatible server (moto's server mode, started by
// scripts/services.sh; S3_TEST_ENDPOINT overrides): announce an upload, PUT the bytes
// to the presigned URL, send, and the receiving socket gets chat.message.new with the
// attachment, whose presigned GET returns the very bytes; the same for an edit's
// chat.message.updated and for chat.sync.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { EVENTS, assertAttachment, assertMessageEvent } from './contract.mjs';
import { uniqueResourceName, useDeployment } from './harness.mjs';
import { waitEvent } from './realtime-helpers.mjs';

const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = uniqueResourceName().replaceAll('_', '-');

const d = useDeployment({
  mode: 'split',
  gateways: 1,
  env: {
    S3_ENDPOINT: S3,
    S3_BUCKET: BUCKET,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'e2e',
    S3_SECRET_ACCESS_KEY: 'e2e-secret',
  },
});

/** GET of a presigned URL: {status, type, bytes}. */
async function download(url) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

d.test('a file uploaded through a presigned PUT reaches the other participant live and downloads', async () => {
  const made = await fetch(`${S3}/${BUCKET}`, { method: 'PUT' });
  assert.ok(made.ok, `creating bucket ${BUCKET} on ${S3}: ${made.status}`);
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const [bobSocket] = await d.connectSockets(bob, [0]);
  const [aliceSocket] = await d.connectSockets(alice, [0]);

  const bytes = Buffer.from(`%PDF-1.4 courier e2e ${randomUUID()}\n`);
  const announced = await d.api('POST', '/uploads', {
    token: alice.accessToken,
    body: { fileName: 'report.pdf', contentType: 'application/pdf', size: bytes.length },
  });
  assert.equal(announced.status, 201, JSON.stringify(announced.body));
  const ticket = announced.body;
  assert.equal(ticket.method, 'PUT');
  assert.deepEqual(ticket.headers, { 'Content-Type': 'application/pdf' });
  const put = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: bytes });
  assert.equal(put.status, 200, `presigned PUT: ${put.status} ${await put.text()}`);

  const clientMessageId = randomUUID();
  const sent = await d.api('POST', `/chats/${chat.id}/messages`, {
    token: alice.accessToken,
    body: { content: 'the report', clientMessageId, attachments: [ticket.id] },
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));

  const byId = (p) => p?.message?.clientMessageId === clientMessageId;
  const { payload } = await waitEvent(bobSocket, EVENTS.NEW, byId, { timeoutMs: 10_000 });
  assertMessageEvent(payload, { chatId: chat.id, senderId: alice.user.id, content: 'the report' });
  const [att] = payload.message.attachments;
  assertAttachment(att);
  assert.deepEqual({ ...att, url: undefined },
    { id: ticket.id, fileName: 'report.pdf', contentType: 'application/pdf', size: bytes.length, url: undefined });
  const got = await download(att.url);
  assert.equal(got.status, 200);
  assert.equal(got.type, 'application/pdf');
  assert.deepEqual(got.bytes, bytes, 'the live event\'s url returns the uploaded bytes');

  const saved = await waitEvent(aliceSocket, EVENTS.SAVED, byId, { timeoutMs: 10_000 });
  assert.equal(saved.payload.message.attachments[0].id, ticket.id);

  // An edit's chat.message.updated carries the attachment with a url of its own.
  const edited = await d.api('PATCH', `/chats/${chat.id}/messages/${payload.message.id}`,
    { token: alice.accessToken, body: { content: 'the final report' } });
  assert.equal(edited.status, 202, JSON.stringify(edited.body));
  const upd = await waitEvent(bobSocket, 'chat.message.updated',
    (p) => p?.message?.id === payload.message.id, { timeoutMs: 10_000 });
  assert.equal(upd.payload.message.content, 'the final report');
  assert.equal(upd.payload.message.attachments[0].id, ticket.id);
  assert.deepEqual((await download(upd.payload.message.attachments[0].url)).bytes, bytes);

  // chat.sync (gateway) mints urls too.
  const ack = await bobSocket.ack('chat.sync', { chats: { [chat.id]: 0 } });
  assert.equal(ack?.status, 'ok', JSON.stringify(ack));
  const synced = ack.messages.find((m) => m.id === payload.message.id);
  assert.equal(synced.attachments[0].id, ticket.id);
  assert.deepEqual((await download(synced.attachments[0].url)).bytes, bytes);
});
