// Limits and sessions (contract "Limits and sessions"): an oversized packet closes that
// socket only (WebSocket and long-polling); the per-user socket cap refuses with
// "too_many_connections"; a socket gets auth.expiring 60 s before its token expires and is
// disconnected at expiry unless auth.refresh moved it; an SSE stream ends at expiry.

import assert from 'node:assert/strict';

import { EventSource } from './realtime.mjs';
import { accessClaims, craftJwt, useDeployment, waitFor } from './harness.mjs';
import { ackOk, directPair, waitEvent } from './realtime-helpers.mjs';

const d = useDeployment({
  mode: 'split',
  gateways: 2,
  env: { GATEWAY_MAX_PAYLOAD: '16384', GATEWAY_MAX_SOCKETS_PER_USER: '3' },
});

/** Resolves once `client` disconnected (or fails after `timeoutMs`). */
const disconnected = (client, timeoutMs = 10_000) => waitFor(() => !client.connected, timeoutMs,
  { message: `${client.label} still connected` });

/** A token of `user` expiring `ttl` seconds from now. */
const tokenFor = (account, ttl) => craftJwt(accessClaims(account.user.id, ttl), d.jwtSecret);

d.test('an oversized packet closes that socket only', async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  for (const transports of [['websocket'], ['polling']]) {
    const [big, small] = await d.connectSockets(alice, [0, 1], { transports });
    const [listener] = await d.connectSockets(bob, [0]);
    big.socket.emit('chat.typing', { chatId: chat.id, isTyping: true, pad: 'x'.repeat(40_000) });
    await disconnected(big);
    assert.ok(small.connected && listener.connected, `${transports}: the other sockets stay`);
    await ackOk(small, 'chat.typing', { chatId: chat.id, isTyping: true, pad: 'x'.repeat(8_000) });
    const sent = await d.send(alice.accessToken, chat.id, `still here over ${transports}`);
    await waitEvent(listener, 'chat.message.new', (p) => p.message?.clientMessageId === sent.clientMessageId);
    for (const c of [small, listener]) c.close();
  }
});

d.test('a user holds at most GATEWAY_MAX_SOCKETS_PER_USER sockets across gateways', async () => {
  const [carol, dave] = await d.registerAll('carol', 'dave');
  const held = await d.connectSockets(carol, [0, 1, 0]);
  await assert.rejects(d.connect(1, carol.accessToken), (err) => err.message === 'too_many_connections');
  const sse = await fetch(`${d.gateway(1)}/events?token=${encodeURIComponent(carol.accessToken)}`);
  assert.equal(sse.status, 429, 'an SSE stream counts too');
  await sse.body?.cancel();
  const [other] = await d.connectSockets(dave, [1]);
  assert.ok(other.connected, 'another user is not affected');
  held[0].close();
  // Once the closed socket is unregistered, a new one is accepted.
  const again = await waitFor(() => d.connect(0, carol.accessToken).catch(() => null), 10_000,
    { intervalMs: 100, message: 'a socket after one closed' });
  assert.ok(again.connected);
});

d.test('auth.expiring before expiry, disconnect at expiry, auth.refresh keeps the socket', { timeout: 30_000 }, async () => {
  const { a: alice, b: bob, chat } = await directPair(d);
  // Expires in 4 s, so within the minute: auth.expiring at once, the disconnect 5 s after expiry.
  const [doomed] = await d.connectSockets({ ...alice, accessToken: tokenFor(alice, 4) }, [0]);
  const [saved] = await d.connectSockets({ ...bob, accessToken: tokenFor(bob, 4) }, [1]);
  const warned = await waitEvent(doomed, 'auth.expiring', () => true, { timeoutMs: 3_000 });
  const exp = Date.parse(warned.payload.expiresAt);
  assert.ok(Math.abs(exp - (Date.now() + 4_000)) < 2_000, `expiresAt ahead by the token's ttl: ${warned.payload.expiresAt}`);
  await waitEvent(saved, 'auth.expiring', () => true, { timeoutMs: 3_000 });

  // Bob refreshes with a token of his own; a token of another user is refused.
  const refused = await saved.ack('auth.refresh', { token: tokenFor(alice, 3600) });
  assert.equal(refused.code, 'forbidden', JSON.stringify(refused));
  const ok = await ackOk(saved, 'auth.refresh', { token: bob.accessToken });
  assert.ok(Date.parse(ok.expiresAt) > Date.now() + 600_000, `new expiry: ${ok.expiresAt}`);

  await disconnected(doomed, 15_000);
  assert.ok(Date.now() >= exp + 4_000, 'not before the leeway ran out');
  const sent = await d.send(alice.accessToken, chat.id, 'after the old expiry');
  await waitEvent(saved, 'chat.message.new', (p) => p.message?.clientMessageId === sent.clientMessageId);
  assert.ok(saved.connected, 'the refreshed socket stays');
});

d.test('an SSE stream ends when its token expires', { timeout: 30_000 }, async () => {
  const [erin] = await d.registerAll('erin');
  const token = tokenFor(erin, 1); // ends 5 s leeway after expiry
  const es = new EventSource(`${d.gateway(0)}/events?token=${encodeURIComponent(token)}`);
  let opened = false;
  let ended = false;
  es.addEventListener('open', () => { opened = true; });
  es.addEventListener('error', () => { if (opened) ended = true; });
  try {
    await waitFor(() => opened, 5_000, { message: 'the stream opens' });
    await waitFor(() => ended, 20_000, { intervalMs: 100, message: 'the stream ends at expiry' });
  } finally {
    es.close();
  }
});
