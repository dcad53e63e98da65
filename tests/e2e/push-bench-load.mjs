// The load side of push-bench.mjs: recipients made in SQL (chunked: one psql argument
// holds at most 128 KiB), set-up calls retried on 429/503 (a loaded machine), a bounded
// pool of async jobs, a message posted on a keep-alive HTTP connection (cheaper for the
// bench than fetch), and quantiles.

import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { accessClaims, craftJwt, sleep, uniqueUsername } from './harness.mjs';

/**
 * A sender registered over REST and `n` recipients cloned from it in SQL (same Argon2
 * hash, as fault-scenario.mjs's createUsers does) with access tokens signed by the
 * deployment's secret: {sender, recipients: [{user: {id, username}, accessToken}]}.
 */
export async function mintRecipients(d, n, ttlSecs = 6 * 3600) {
  const sender = await d.register('sender');
  const recipients = Array.from({ length: n }, (_, i) => {
    const id = randomUUID();
    const username = uniqueUsername(`r${i}`);
    return { user: { id, username, displayName: `r${i}` }, username, accessToken: craftJwt(accessClaims(id, ttlSecs), d.jwtSecret) };
  });
  for (let i = 0; i < n; i += 500) {
    const values = recipients.slice(i, i + 500)
      .map((r) => `('${r.user.id}'::uuid, '${r.username}', '${r.user.displayName}')`).join(', ');
    await d.sql(`INSERT INTO users (id, username, display_name, password_hash)
      SELECT v.id, v.username, v.display_name, u.password_hash
      FROM (VALUES ${values}) AS v(id, username, display_name), users u WHERE u.id = '${sender.user.id}'`);
  }
  return { sender, recipients };
}

/** `d.api(method, urlPath, options)` until its status is in `ok`; 429 and 503 are retried 5 times. */
export async function setupCall(d, method, urlPath, options, ok) {
  for (let attempt = 1; ; attempt += 1) {
    const res = await d.api(method, urlPath, options);
    if (ok.includes(res.status)) return res.body;
    if (![429, 503].includes(res.status) || attempt >= 6) {
      throw new Error(`${method} ${urlPath}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    await sleep(250 * attempt);
  }
}

/** Runs `fn(item)` over `items` with at most `n` at a time, in order of start; resolves the results. */
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
  return out;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/** POST /chats/:chatId/messages; resolves the status code, or `io/<code>` on a network error. */
export function postMessage(apiUrl, token, chatId, content) {
  const body = JSON.stringify({ content, clientMessageId: randomUUID() });
  return new Promise((resolve) => {
    const req = http.request(`${apiUrl}/chats/${chatId}/messages`, {
      method: 'POST',
      agent,
      timeout: 15_000,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', (err) => resolve(`io/${err.code ?? err.message}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err) => resolve(`io/${err.code ?? err.message}`));
    req.end(body);
  });
}

/** p50/p90/p99/max (rounded, ms) and the count of `values`. */
export function quantiles(values) {
  const v = [...values].sort((a, b) => a - b);
  const q = (p) => (v.length ? Math.round(v[Math.min(v.length - 1, Math.floor(p * v.length))]) : null);
  return { n: v.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: v.length ? Math.round(v.at(-1)) : null };
}
