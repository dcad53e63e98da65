// The engine.io heartbeat (GATEWAY_PING_INTERVAL_MS / GATEWAY_PING_TIMEOUT_MS, run by the
// patched engineioxide task of patches/README.md): the open packet advertises both, a
// socket.io-client socket that answers every ping stays connected over WebSocket and
// long-polling, and a client that never answers is closed by the gateway.

import assert from 'node:assert/strict';

import WebSocket from 'ws';

import { useDeployment, waitFor } from './harness.mjs';

const INTERVAL = 300;
const TIMEOUT = 400;
const d = useDeployment({
  mode: 'split',
  gateways: 1,
  env: { GATEWAY_PING_INTERVAL_MS: String(INTERVAL), GATEWAY_PING_TIMEOUT_MS: String(TIMEOUT) },
});

/** A raw engine.io v4 WebSocket of gateway 0 recording every text frame; `pong` answers pings. */
function rawSocket({ pong }) {
  const url = `${d.gateway(0).replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const ws = new WebSocket(url);
  const raw = { ws, frames: [], closed: null };
  ws.on('message', (data) => {
    const frame = data.toString();
    raw.frames.push(frame);
    if (frame === '2' && pong) ws.send('3');
  });
  ws.on('close', (code) => { raw.closed = { code, pings: raw.frames.filter((f) => f === '2').length }; });
  ws.on('error', () => {});
  return raw;
}

const pings = (raw) => raw.frames.filter((f) => f === '2').length;

d.test('the open packet advertises the configured heartbeat', async () => {
  const raw = rawSocket({ pong: true });
  const open = await waitFor(() => raw.frames.find((f) => f.startsWith('0')), 5_000,
    { message: 'no engine.io open packet' });
  const handshake = JSON.parse(open.slice(1));
  assert.equal(handshake.pingInterval, INTERVAL);
  assert.equal(handshake.pingTimeout, TIMEOUT);
  raw.ws.close();
});

d.test('a client that answers every ping stays connected', async () => {
  const answering = rawSocket({ pong: true });
  await waitFor(() => pings(answering) >= 4, 10_000, { message: () => `pings: ${pings(answering)}` });
  assert.equal(answering.closed, null, 'the gateway closed a socket that answered its pings');
  answering.ws.close();

  const [account] = await d.registerAll('hb');
  for (const transports of [['websocket'], ['polling']]) {
    const client = await d.connect(0, account.accessToken, { transports });
    let seen = 0;
    let disconnected = null;
    client.socket.io.engine.on('ping', () => { seen += 1; });
    client.socket.on('disconnect', (reason) => { disconnected = reason; });
    await waitFor(() => seen >= 4 || disconnected, 10_000, { message: () => `${transports}: pings ${seen}` });
    assert.equal(disconnected, null, `${transports}: disconnected (${disconnected}) after ${seen} pings`);
    assert.ok(client.connected);
    // The socket still works after the pings: an ack round trip.
    const ack = await client.ack('chat.sync', { chats: {} });
    assert.equal(ack?.status, 'ok', `${transports}: ack after ${seen} pings: ${JSON.stringify(ack)}`);
    client.close();
  }
});

d.test('a client that never answers a ping is closed', async () => {
  const silent = rawSocket({ pong: false });
  const closed = await waitFor(() => silent.closed, 10_000,
    { message: () => `still open after ${pings(silent)} unanswered pings` });
  assert.equal(closed.pings, 1, 'closed after the first unanswered ping, not before one was sent');
});
