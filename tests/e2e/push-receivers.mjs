// Test receivers that do what the push services do to a request, and no more: a Web Push
// service (RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID) and FCM HTTP v1 (an
// OAuth2 token endpoint taking an RS256 service-account assertion, and messages:send).
// Each is a local HTTP server on 127.0.0.1 that verifies every request, records what it
// got, answers per a programmable plan, and wakes `waitFor` callers on each receipt.
// A request that fails verification is answered 400 (401 for a bad bearer token) and
// recorded in `failures`; tests assert there are none. For load (push-bench.mjs) the Web
// Push receiver can verify only a sample: `{verify: 'sample', sampleEvery: N}` verifies
// and decrypts the 1st request and every Nth after it, and only routes, checks the
// headers of and records (without a payload, `verified: false`) the others.

import { randomBytes, randomUUID } from 'node:crypto';

import { FcmReceiver } from './push-fcm.mjs';
import { b64u, decryptAes128gcm, p256PublicKey, unb64u, userAgentKeys, verifyJwt } from './push-crypto.mjs';
import { Receiver, Refusal, nowSecs } from './push-receiver-base.mjs';

export { b64u, vapidKeys } from './push-crypto.mjs';

const URGENCIES = ['very-low', 'low', 'normal', 'high'];

/** The Web Push service: endpoints http://127.0.0.1:<port>/push/<id>. */
class WebPushReceiver extends Receiver {
  #subs = new Map(); // id -> {ecdh, auth, json}

  #seen = 0; // requests routed to a known subscription, for sampling

  constructor({ vapidPublicKey = null, vapidSubject = null, verify = 'all', sampleEvery = 10 } = {}) {
    super('web push');
    if (!['all', 'sample'].includes(verify)) throw new Error(`verify: 'all' or 'sample', not ${verify}`);
    if (!(Number.isInteger(sampleEvery) && sampleEvery >= 1)) throw new Error(`sampleEvery ${sampleEvery}: an integer ≥ 1`);
    this.vapidPublicKey = vapidPublicKey;
    this.vapidSubject = vapidSubject;
    this.sampleEvery = verify === 'all' ? 1 : sampleEvery;
  }

  /** A new subscription as the browser's `PushSubscription.toJSON()` gives it. */
  newSubscription() {
    const id = randomBytes(12).toString('base64url');
    const { ecdh, auth } = userAgentKeys();
    const json = {
      endpoint: `${this.origin}/push/${id}`,
      expirationTime: null,
      keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) },
    };
    this.#subs.set(id, { ecdh, auth, json });
    return structuredClone(json);
  }

  /** The id of a subscription (the object `newSubscription` returned, its endpoint, or the id). */
  keyOf(sub) { return typeof sub === 'string' ? sub.split('/').pop() : sub.endpoint.split('/').pop(); }

  /** Verified requests to `sub` (all subscriptions without it), whatever was answered. */
  attempts(sub) { return sub ? this.requests.filter((r) => r.subscriptionId === this.keyOf(sub)) : this.requests; }

  /** Requests to `sub` answered 2xx: the pushes that were delivered. */
  pushes(sub) { return this.attempts(sub).filter((r) => r.status >= 200 && r.status < 300); }

  /** Resolves the delivered pushes of `sub` once there are at least `n`. */
  waitForPushes(sub, n = 1, timeoutMs = 15_000) {
    return this.waitForCount(() => this.pushes(sub), n, timeoutMs, `push(es) to ${this.keyOf(sub)}`);
  }

  /** Resolves the requests to `sub` once there are at least `n`, whatever was answered. */
  waitForAttempts(sub, n = 1, timeoutMs = 15_000) {
    return this.waitForCount(() => this.attempts(sub), n, timeoutMs, `request(s) to ${this.keyOf(sub)}`);
  }

  async handle(req, url, body) {
    const at = Date.now(); // the body has arrived
    const match = /^\/push\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) throw new Refusal(404, `no route ${req.method} ${url.pathname}`);
    const id = match[1];
    const sub = this.#subs.get(id);
    if (!sub) throw new Refusal(404, `unknown subscription ${id}`);
    const headers = this.#checkHeaders(req, body);
    if (this.#seen++ % this.sampleEvery !== 0) return this.#record(id, sub, headers, body, { at });
    const vapid = this.#checkVapid(req.headers.authorization);
    let plaintext;
    try { plaintext = decryptAes128gcm(body, sub).toString('utf8'); } catch (err) {
      throw new Refusal(400, `decryption: ${err.message}`);
    }
    let payload;
    try { payload = JSON.parse(plaintext); } catch {
      throw new Refusal(400, `payload is not JSON: ${plaintext.slice(0, 200)}`);
    }
    return this.#record(id, sub, headers, body, { at, vapid, payload, plaintext });
  }

  /** Records a request (`verified` when it carries `vapid`) and answers it per the plan. */
  #record(id, sub, headers, body, { at, ...checked }) {
    const answer = this.nextAnswer(id, 201);
    this.requests.push({
      subscriptionId: id, endpoint: sub.json.endpoint, headers, ...checked, verified: Boolean(checked.vapid),
      bodyBytes: body.length, status: answer.status, at,
    });
    const out = { 'content-type': 'text/plain' };
    if (answer.status === 201) out.location = `${this.origin}/message/${randomUUID()}`;
    if (answer.retryAfter !== undefined) out['retry-after'] = String(answer.retryAfter);
    return { status: answer.status, headers: out, body: answer.body ?? '' };
  }

  /** RFC 8030 §5 and RFC 8291 §4: the delivery headers. */
  #checkHeaders(req, body) {
    const h = req.headers;
    if (h['content-encoding'] !== 'aes128gcm') {
      throw new Refusal(400, `Content-Encoding ${JSON.stringify(h['content-encoding'])}, expected aes128gcm`);
    }
    if (!/^\d+$/.test(h.ttl ?? '')) throw new Refusal(400, `TTL header ${JSON.stringify(h.ttl)} is not a number of seconds`);
    if (h.urgency !== undefined && !URGENCIES.includes(h.urgency)) {
      throw new Refusal(400, `Urgency ${JSON.stringify(h.urgency)} not one of ${URGENCIES.join(', ')}`);
    }
    if (h.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(h.topic)) {
      throw new Refusal(400, `Topic ${JSON.stringify(h.topic)}: at most 32 base64url characters`);
    }
    if (body.length > 4096) throw new Refusal(413, `body of ${body.length} bytes over the 4096 a push service takes`);
    return {
      ttl: Number(h.ttl), urgency: h.urgency, topic: h.topic,
      contentEncoding: h['content-encoding'], contentType: h['content-type'],
    };
  }

  /** RFC 8292: `Authorization: vapid t=<ES256 JWT>, k=<public key>`. */
  #checkVapid(authorization) {
    const m = /^vapid\s+(.*)$/i.exec(authorization ?? '');
    if (!m) throw new Refusal(400, `Authorization ${JSON.stringify(authorization)} is not the vapid scheme`);
    const params = Object.fromEntries(m[1].split(',').map((p) => p.trim().split('=')).map(([k, ...v]) => [k, v.join('=')]));
    if (!params.t || !params.k) throw new Refusal(400, 'vapid Authorization needs t= and k=');
    let key;
    let raw;
    try { raw = unb64u(params.k, 'k'); key = p256PublicKey(raw); } catch (err) {
      throw new Refusal(400, `vapid k: ${err.message}`);
    }
    if (this.vapidPublicKey && !raw.equals(unb64u(this.vapidPublicKey))) {
      throw new Refusal(400, 'vapid k is not the configured application server key');
    }
    let claims;
    try { ({ claims } = verifyJwt(params.t, key, 'ES256')); } catch (err) {
      throw new Refusal(400, `vapid t: ${err.message}`);
    }
    if (claims.aud !== this.origin) {
      throw new Refusal(400, `vapid aud ${JSON.stringify(claims.aud)} is not the endpoint's origin ${this.origin}`);
    }
    const now = nowSecs();
    if (!Number.isInteger(claims.exp) || claims.exp <= now) throw new Refusal(400, `vapid exp ${claims.exp} not in the future`);
    if (claims.exp > now + 24 * 3600 + 1) throw new Refusal(400, `vapid exp ${claims.exp} more than 24 h ahead`);
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) {
      throw new Refusal(400, `vapid sub ${JSON.stringify(claims.sub)} is not a mailto: or https: URI`);
    }
    if (this.vapidSubject && claims.sub !== this.vapidSubject) {
      throw new Refusal(400, `vapid sub ${claims.sub} is not the configured ${this.vapidSubject}`);
    }
    return { claims, k: params.k, token: params.t };
  }
}

/**
 * Starts the Web Push receiver; `vapidPublicKey` / `vapidSubject` pin what VAPID must carry;
 * `verify: 'sample'` with `sampleEvery` verifies only a sample (load runs; tests keep 'all').
 */
export function startWebPushReceiver(options = {}) { return new WebPushReceiver(options).listen(); }

/** Starts the FCM receiver for project `projectId`. */
export function startFcmReceiver({ projectId = 'courier-e2e' } = {}) { return new FcmReceiver({ projectId }).listen(); }
