// Fault-injection toolkit, common part: broker names, the knobs (`faultSettings`,
// environment overrides) and small helpers (partition of a chat, `eventually`, HTTP
// requests on a given agent).

import http from 'node:http';

import { sleep } from './harness.mjs';

export const DEFAULT_DLQ = 'chat.message.send.dlq';
export const DEFAULT_QUEUE_PREFIX = 'chat.message.send';
export const DEFAULT_EXCHANGE = 'chat.events';
export const PARTITIONS = 8;

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? v : fallback;
};

/** Knobs (environment overrides keep CI lean or make a local run heavier). */
export const faultSettings = Object.freeze({
  /** Messages each sender sends in a scenario. */
  perSender: envInt('COURIER_FAULT_PER_SENDER', 100),
  /** Messages per second per sender (4 senders). */
  ratePerSender: envInt('COURIER_FAULT_RATE', 20),
  /** How long a stream may run at most before senders stop issuing new messages. */
  streamDeadlineMs: envInt('COURIER_FAULT_STREAM_DEADLINE_MS', 60_000),
  /** Attempts and total time one message may take (503 / network errors are retried). */
  maxAttempts: envInt('COURIER_FAULT_MAX_ATTEMPTS', 25),
  messageDeadlineMs: envInt('COURIER_FAULT_MESSAGE_DEADLINE_MS', 45_000),
  /** How long a fault (service down) lasts. */
  downMs: envInt('COURIER_FAULT_DOWN_MS', 3000),
  /** Where a scenario requires it: live delivery at most this long after max(accepted, service back). */
  liveWithinMs: envInt('COURIER_FAULT_LIVE_WITHIN_MS', 2000),
  /** RUST_LOG of the processes (info: shows reconnects, holds, dead-letters). */
  rustLog: process.env.COURIER_E2E_RUST_LOG ?? 'info',
});


/** Partition of a chat, as Courier computes it: fnv1a_64(16 uuid bytes) mod count. */
export function partitionOf(chatId, count = PARTITIONS) {
  const bytes = Buffer.from(chatId.replace(/-/g, ''), 'hex');
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % BigInt(count));
}

/** Polls `predicate` until truthy or `timeoutMs`; resolves the value or false (no throw). */
export async function eventually(predicate, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
    } catch { /* keep polling */ }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * One HTTP request on a given agent (a "device": its own keep-alive connections).
 * Resolves {status, body, headers}; rejects on network errors and timeouts (err.code).
 */
export function httpRequest(baseUrl, method, urlPath, { token, body, agent, timeoutMs = 12_000 } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(urlPath, baseUrl);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text === '' ? null : text;
        if (text && (res.headers['content-type'] ?? '').includes('json')) {
          try { parsed = JSON.parse(text); } catch { /* keep text */ }
        }
        resolve({ status: res.statusCode, body: parsed, headers: res.headers });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}
