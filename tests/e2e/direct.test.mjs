// Direct chat between two users through one gateway instance (split mode),
// over each Engine.IO transport setup, plus the REST side of sending.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { assertError } from './contract.mjs';
import { directRoundTrip, useDeployment, waitFor } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 1 });

d.test('every process answers /healthz and /readyz with 200', async () => {
  for (const proc of d.processes) {
    for (const probe of ['/healthz', '/readyz']) {
      const res = await d.api('GET', probe, { baseUrl: proc.healthUrl });
      assert.equal(res.status, 200, `${proc.name} ${probe}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }
});

d.test('direct chat over WebSocket only', () =>
  directRoundTrip(d, { transports: ['websocket'] }));

d.test('direct chat over polling, upgraded to WebSocket', () =>
  directRoundTrip(d, { transports: ['polling', 'websocket'] }));

d.test('direct chat over HTTP long-polling only', () =>
  directRoundTrip(d, { transports: ['polling'] }));

d.test('creating an existing direct chat again answers 200 with the same chat', async () => {
  const [a, b] = await d.registerAll('alice', 'bob');
  const first = await d.api('POST', '/chats',
    { token: a.accessToken, body: { type: 'direct', participantIds: [b.user.id] } });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const again = await d.api('POST', '/chats',
    { token: b.accessToken, body: { type: 'direct', participantIds: [a.user.id] } });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.id, first.body.id);
});

d.test('bad sends are refused with the contract error shape and persist nothing', async () => {
  const [a, b, outsider] = await d.registerAll('alice', 'bob', 'mallory');
  const chat = await d.createDirect(a.accessToken, b.user.id);
  const path = `/chats/${chat.id}/messages`;

  assertError(await d.api('POST', path, { body: { content: 'x', clientMessageId: randomUUID() } }),
    401, 'unauthorized');
  assertError(await d.sendRaw(outsider.accessToken, chat.id, 'let me in'), 403, 'forbidden');
  assertError(await d.sendRaw(a.accessToken, randomUUID(), 'nowhere'), 404, 'not_found');
  assertError(await d.sendRaw(a.accessToken, chat.id, '   '), 400, 'validation_failed');
  assertError(await d.sendRaw(a.accessToken, chat.id, 'x'.repeat(4001)), 400, 'validation_failed');
  assertError(await d.api('POST', path, {
    token: a.accessToken, rawBody: '{"content": "cut', headers: { 'content-type': 'application/json' },
  }), 400, 'invalid_json');

  // A valid send after them, in the same chat (one partition, in order): once it is in
  // history, anything accepted before it would be too.
  const marker = await d.send(a.accessToken, chat.id, 'marker');
  const page = await waitFor(async () => {
    const p = await d.history(a.accessToken, chat.id);
    return p.messages.length > 0 && p;
  }, 10_000, { message: 'the marker in history' });
  assert.deepEqual(page.messages.map((m) => m.clientMessageId), [marker.clientMessageId], 'only the marker was persisted');
});
