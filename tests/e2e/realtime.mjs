// Helpers of the realtime-session tests (recovery.test.mjs, sse.test.mjs): offsets
// ("<ms>-<n>", compared numerically), the recoverable events of a socket's log, and
// `SseClient`, an event-recording wrapper of the npm `eventsource` client (a real,
// WHATWG-conformant EventSource: it resumes with Last-Event-ID by itself after a drop).

import assert from 'node:assert/strict';

import { EventSource } from 'eventsource';

import { EVENTS } from './contract.mjs';
import { waitFor } from './harness.mjs';

/** Server -> client events that carry an offset (contract "Recovery and offsets"). */
export const RECOVERABLE = Object.freeze([EVENTS.NEW, EVENTS.SAVED, EVENTS.STATUS]);
export const RECOVERED = 'session.recovered';
export const PRESENCE = 'presence.update';

const OFFSET_RE = /^(\d+)-(\d+)$/;

/** [ms, n] as BigInts; throws on anything that is not "<ms>-<n>". */
export function parseOffset(offset) {
  const m = OFFSET_RE.exec(String(offset));
  assert.ok(m, `offset must look like "<ms>-<n>", got ${JSON.stringify(offset)}`);
  return [BigInt(m[1]), BigInt(m[2])];
}

/** <0, 0, >0 like a comparator, on the numeric value of two offsets. */
export function compareOffsets(a, b) {
  const [am, an] = parseOffset(a);
  const [bm, bn] = parseOffset(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (an !== bn) return an < bn ? -1 : 1;
  return 0;
}

/** Asserts that `offsets` strictly increase (numerically). */
export function assertIncreasing(offsets, what) {
  for (let i = 1; i < offsets.length; i++) {
    assert.ok(compareOffsets(offsets[i - 1], offsets[i]) < 0,
      `${what}: offset #${i} ${offsets[i]} does not follow ${offsets[i - 1]} (offsets must strictly increase)`);
  }
}

/** Asserts the shape of a `session.recovered` payload and returns it. */
export function assertRecovered(payload, recovered, what) {
  assert.ok(payload && typeof payload === 'object', `${what}: ${RECOVERED} payload ${JSON.stringify(payload)}`);
  assert.equal(payload.recovered, recovered, `${what}: ${RECOVERED}.recovered in ${JSON.stringify(payload)}`);
  parseOffset(payload.offset);
  return payload;
}

/**
 * The recoverable events of a ChatClient's log (or of any [{event, payload}] list), in
 * arrival order, as {event, payload, offset}; asserts that each carries an offset.
 */
export function recoverableOf(events, what = 'socket') {
  return events.filter((e) => RECOVERABLE.includes(e.event)).map((e) => {
    assert.equal(typeof e.payload?.offset, 'string', `${what}: ${e.event} without an offset: ${JSON.stringify(e.payload)}`);
    parseOffset(e.payload.offset);
    return { event: e.event, payload: e.payload, offset: e.payload.offset };
  });
}

/** Resolves the first event of `client` (ChatClient or SseClient) matching `pred`, waiting up to `timeoutMs`. */
export function waitForEvent(client, pred, timeoutMs = 10_000, what = 'an event') {
  return waitFor(() => client.events.find(pred), timeoutMs,
    { message: () => `${client.label}: no ${what} within ${timeoutMs} ms (got ${client.events.map((e) => e.event).join(', ')})` });
}

/**
 * An EventSource on `GET /events` of a gateway that records every named event it gets:
 * {event, id (the SSE id: field), payload (parsed data), at}. `opens` counts the
 * (re)connections, `errors` the error events ({code, message}).
 */
export class SseClient {
  constructor(url, { token, via = 'header', lastEventId, lastEventIdVia = 'header', label = 'sse', names = [] } = {}) {
    this.label = label;
    this.token = token; // for `barrier` (barrier.mjs), with 'chat.updated' in `names`
    this.events = [];
    this.errors = [];
    this.opens = 0;
    /** Request headers of every request the EventSource made (Last-Event-ID checks). */
    this.requests = [];
    const u = new URL('/events', url);
    if (token != null && via === 'query') u.searchParams.set('token', token);
    if (lastEventId != null && lastEventIdVia === 'query') u.searchParams.set('lastEventId', lastEventId);
    const extra = {};
    if (token != null && via === 'header') extra.authorization = `Bearer ${token}`;
    if (lastEventId != null && lastEventIdVia === 'header') extra['Last-Event-ID'] = lastEventId;
    this.source = new EventSource(u.toString(), {
      // The library's own headers (Accept, and Last-Event-ID on its reconnects) win over ours.
      fetch: (input, init) => {
        const headers = { ...extra, ...init.headers };
        this.requests.push(headers);
        return fetch(input, { ...init, headers });
      },
    });
    for (const name of new Set([...RECOVERABLE, RECOVERED, PRESENCE, 'chat.typing', ...names])) {
      this.source.addEventListener(name, (e) => {
        let payload;
        try { payload = JSON.parse(e.data); } catch { payload = e.data; }
        this.events.push({ event: name, id: e.lastEventId, payload, at: Date.now() });
      });
    }
    this.source.addEventListener('open', () => { this.opens++; });
    this.source.addEventListener('error', (e) => { this.errors.push({ code: e.code, message: e.message, at: Date.now() }); });
  }

  get readyState() { return this.source.readyState; }

  received(event) { return this.events.filter((e) => e.event === event).map((e) => e.payload); }

  /** Resolves once the stream is open; rejects when the EventSource gives up (e.g. a 401). */
  async opened(timeoutMs = 10_000) {
    await waitFor(() => this.opens > 0 || this.source.readyState === EventSource.CLOSED, timeoutMs,
      { message: () => `${this.label}: not open (errors ${JSON.stringify(this.errors)})` });
    if (this.opens === 0) throw new Error(`${this.label}: refused: ${JSON.stringify(this.errors)}`);
  }

  /** Resolves the error once the EventSource has failed for good (readyState CLOSED). */
  async failed(timeoutMs = 10_000) {
    await waitFor(() => this.source.readyState === EventSource.CLOSED, timeoutMs,
      { message: () => `${this.label}: still ${this.source.readyState} (errors ${JSON.stringify(this.errors)})` });
    return this.errors.at(-1);
  }

  close() { this.source.close(); }
}

export { EventSource };

/**
 * A TCP proxy in front of `targetUrl` that a test can cut (every connection through it is
 * destroyed, and new ones are refused until `restore()`): a dropped network path, seen by
 * the client as a broken stream.
 */
export class TcpProxy {
  constructor(targetUrl) {
    const u = new URL(targetUrl);
    this.target = { host: u.hostname, port: Number(u.port) };
    this.up = true;
    this.pairs = new Set();
    this.accepted = 0;
  }

  async start() {
    const net = await import('node:net');
    this.server = net.createServer((client) => {
      if (!this.up) { client.destroy(); return; }
      this.accepted++;
      const upstream = net.connect(this.target);
      const pair = [client, upstream];
      this.pairs.add(pair);
      const end = () => { client.destroy(); upstream.destroy(); this.pairs.delete(pair); };
      for (const s of pair) { s.on('error', end); s.on('close', end); }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  /** Destroys every proxied connection and refuses new ones. */
  cut() {
    this.up = false;
    for (const [a, b] of this.pairs) { a.destroy(); b.destroy(); }
    this.pairs.clear();
  }

  restore() { this.up = true; }

  close() {
    this.cut();
    this.server?.close();
  }
}
