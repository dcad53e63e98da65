// Test receivers that do what the push services do to a request, and no more: a Web Push
// service (RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID) and FCM HTTP v1 (an
// OAuth2 token endpoint taking an RS256 service-account assertion, and messages:send).
// Each is a local HTTP server on 127.0.0.1 that verifies every request, records what it
// got, answers per a programmable plan, and wakes `waitFor` callers on each receipt.
// A request that fails verification is answered 400 (401 for a bad bearer token) and
// recorded in `failures`; tests assert there are none.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { b64u, decryptAes128gcm, p256PublicKey, unb64u, userAgentKeys, verifyJwt } from './push-crypto.mjs';

export { b64u, vapidKeys } from './push-crypto.mjs';

const MAX_BODY = 64 * 1024;
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const URGENCIES = ['very-low', 'low', 'normal', 'high'];
const nowSecs = () => Math.floor(Date.now() / 1000);

/** A plan entry: a status number, or {status, retryAfter?, body?}. */
const normalize = (entry) => (typeof entry === 'number' ? { status: entry } : { ...entry });

/** Why a request is refused: the status to answer and the reason recorded. */
class Refusal extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Refusal(413, `body over ${MAX_BODY} bytes`)); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The common part: server, records, failures, plans and waiters. */
class Receiver {
  #waiters = new Set();
  #plans = new Map();

  constructor(kind) {
    this.kind = kind;
    /** Every verified request, in arrival order (whatever was answered). */
    this.requests = [];
    /** Every refused request: {reason, method, path, at}. */
    this.failures = [];
  }

  async listen() {
    this.server = http.createServer((req, res) => {
      this.#serve(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500).end(String(err.message));
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async #serve(req, res) {
    const url = new URL(req.url, this.origin);
    try {
      const body = await readBody(req);
      const answer = await this.handle(req, url, body);
      this.#wake();
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.failures.push({ reason: err.message, method: req.method, path: url.pathname, at: Date.now() });
      this.#wake();
      res.writeHead(err.status, { 'content-type': 'application/json' })
        .end(JSON.stringify(this.refusalBody(err)));
    }
  }

  refusalBody(err) { return { error: err.message }; }

  /** Programs the next answers for `key` (a subscription or a token): consumed in order, then the default. */
  plan(key, entries) { this.#plans.set(this.keyOf(key), entries.map(normalize)); }

  nextAnswer(key, fallback) { return this.#plans.get(key)?.shift() ?? normalize(fallback); }

  /** Resolves with `predicate()`'s first truthy value, checked now and on every receipt. */
  waitFor(predicate, timeoutMs = 15_000, { message, failFast = true } = {}) {
    return new Promise((resolve, reject) => {
      const failuresBefore = this.failures.length;
      const waiter = () => {
        if (failFast && this.failures.length > failuresBefore) {
          return finish(new Error(`${this.kind} receiver refused a request: ${JSON.stringify(this.failures.at(-1))}`));
        }
        let value;
        try { value = predicate(); } catch (err) { return finish(err); }
        if (value) finish(null, value);
        return undefined;
      };
      const timer = setTimeout(() => {
        const what = typeof message === 'function' ? message() : (message ?? String(predicate));
        finish(new Error(`${this.kind} receiver: timed out after ${timeoutMs} ms waiting for ${what}`
          + ` (${this.requests.length} requests, ${this.failures.length} failures)`));
      }, timeoutMs);
      const finish = (err, value) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (err) reject(err); else resolve(value);
      };
      this.#waiters.add(waiter);
      waiter();
    });
  }

  #wake() { for (const w of [...this.#waiters]) w(); }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The Web Push service: endpoints http://127.0.0.1:<port>/push/<id>. */
class WebPushReceiver extends Receiver {
  #subs = new Map(); // id -> {ecdh, auth, json}

  constructor({ vapidPublicKey = null, vapidSubject = null } = {}) {
    super('web push');
    this.vapidPublicKey = vapidPublicKey;
    this.vapidSubject = vapidSubject;
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
    return this.waitFor(() => this.pushes(sub).length >= n && this.pushes(sub), timeoutMs,
      { message: () => `${n} push(es) to ${this.keyOf(sub)} (have ${this.pushes(sub).length})` });
  }

  /** Resolves the requests to `sub` once there are at least `n`, whatever was answered. */
  waitForAttempts(sub, n = 1, timeoutMs = 15_000) {
    return this.waitFor(() => this.attempts(sub).length >= n && this.attempts(sub), timeoutMs,
      { message: () => `${n} request(s) to ${this.keyOf(sub)} (have ${this.attempts(sub).length})` });
  }

  async handle(req, url, body) {
    const match = /^\/push\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) throw new Refusal(404, `no route ${req.method} ${url.pathname}`);
    const id = match[1];
    const sub = this.#subs.get(id);
    if (!sub) throw new Refusal(404, `unknown subscription ${id}`);
    const headers = this.#checkHeaders(req, body);
    const vapid = this.#checkVapid(req.headers.authorization);
    let plaintext;
    try { plaintext = decryptAes128gcm(body, sub).toString('utf8'); } catch (err) {
      throw new Refusal(400, `decryption: ${err.message}`);
    }
    let payload;
    try { payload = JSON.parse(plaintext); } catch {
      throw new Refusal(400, `payload is not JSON: ${plaintext.slice(0, 200)}`);
    }
    const answer = this.nextAnswer(id, 201);
    this.requests.push({
      subscriptionId: id, endpoint: sub.json.endpoint, headers, vapid, payload, plaintext,
      bodyBytes: body.length, status: answer.status, at: Date.now(),
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
    return { claims, k: params.k };
  }
}

/** FCM HTTP v1: POST /token (OAuth2 JWT bearer grant) and POST /v1/projects/<id>/messages:send. */
class FcmReceiver extends Receiver {
  #tokens = new Map(); // access token -> expiry (ms)

  constructor({ projectId }) {
    super('fcm');
    this.projectId = projectId;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.privateKeyId = randomBytes(20).toString('hex');
    this.clientEmail = `courier-pusher@${projectId}.iam.gserviceaccount.com`;
    /** Token requests granted: {claims, at}. */
    this.grants = [];
  }

  get tokenUri() { return `${this.origin}/token`; }

  /** Writes a Google service-account JSON for FCM_SERVICE_ACCOUNT_FILE into `dir`; resolves its path. */
  async serviceAccountFile(dir) {
    const file = path.join(dir, `service-account-${this.port}.json`);
    await writeFile(file, JSON.stringify({
      type: 'service_account',
      project_id: this.projectId,
      private_key_id: this.privateKeyId,
      private_key: this.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: this.clientEmail,
      client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      universe_domain: 'googleapis.com',
    }, null, 2), { mode: 0o600 });
    return file;
  }

  /** A registration token shaped like the ones FCM gives apps. */
  newToken() { return `${randomBytes(16).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`; }

  keyOf(token) { return token; }

  attempts(token) { return token ? this.requests.filter((r) => r.token === token) : this.requests; }

  /** Sends to `token` answered 200. */
  messages(token) { return this.attempts(token).filter((r) => r.status === 200); }

  waitForMessages(token, n = 1, timeoutMs = 15_000) {
    return this.waitFor(() => this.messages(token).length >= n && this.messages(token), timeoutMs,
      { message: () => `${n} FCM message(s) to ${token.slice(0, 12)}… (have ${this.messages(token).length})` });
  }

  waitForAttempts(token, n = 1, timeoutMs = 15_000) {
    return this.waitFor(() => this.attempts(token).length >= n && this.attempts(token), timeoutMs,
      { message: () => `${n} FCM send(s) to ${token.slice(0, 12)}… (have ${this.attempts(token).length})` });
  }

  refusalBody(err) {
    return err.status === 401
      ? { error: { code: 401, message: err.message, status: 'UNAUTHENTICATED' } }
      : { error: err.status === 400 && err.grant ? 'invalid_grant' : 'invalid_request', error_description: err.message };
  }

  async handle(req, url, body) {
    if (req.method === 'POST' && url.pathname === '/token') return this.#token(req, body);
    if (req.method === 'POST' && url.pathname === `/v1/projects/${this.projectId}/messages:send`) {
      return this.#send(req, body);
    }
    throw new Refusal(404, `no route ${req.method} ${url.pathname}`);
  }

  #token(req, body) {
    const refuse = (why) => Object.assign(new Refusal(400, `token: ${why}`), { grant: true });
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw refuse(`Content-Type ${req.headers['content-type']}, expected application/x-www-form-urlencoded`);
    }
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== JWT_BEARER) throw refuse(`grant_type ${form.get('grant_type')}`);
    let header;
    let claims;
    try { ({ header, claims } = verifyJwt(form.get('assertion'), this.publicKey, 'RS256')); } catch (err) {
      throw refuse(`assertion: ${err.message}`);
    }
    if (header.kid !== undefined && header.kid !== this.privateKeyId) throw refuse(`kid ${header.kid} is not the key's id`);
    if (claims.iss !== this.clientEmail) throw refuse(`iss ${claims.iss} is not the client_email`);
    if (claims.aud !== this.tokenUri) throw refuse(`aud ${claims.aud} is not the token_uri ${this.tokenUri}`);
    if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(FCM_SCOPE)) {
      throw refuse(`scope ${JSON.stringify(claims.scope)} lacks ${FCM_SCOPE}`);
    }
    const now = nowSecs();
    if (!Number.isInteger(claims.iat) || claims.iat > now + 60 || claims.iat < now - 3600) throw refuse(`iat ${claims.iat}`);
    if (!Number.isInteger(claims.exp) || claims.exp <= now || claims.exp - claims.iat > 3600) {
      throw refuse(`exp ${claims.exp} (must be in the future and at most 1 h after iat)`);
    }
    const accessToken = `ya29.${randomBytes(32).toString('base64url')}`;
    this.#tokens.set(accessToken, Date.now() + 3600_000);
    this.grants.push({ claims, at: Date.now() });
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ access_token: accessToken, expires_in: 3600, token_type: 'Bearer' }),
    };
  }

  #send(req, body) {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !(this.#tokens.get(bearer) > Date.now())) {
      throw new Refusal(401, `Authorization ${bearer ? 'bearer token not issued here or expired' : 'is not a Bearer token'}`);
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      throw new Refusal(400, `Content-Type ${req.headers['content-type']}, expected application/json`);
    }
    let parsed;
    try { parsed = JSON.parse(body.toString('utf8')); } catch { throw new Refusal(400, 'body is not JSON'); }
    const message = checkFcmMessage(parsed);
    const answer = this.nextAnswer(message.token, 200);
    this.requests.push({ token: message.token, message, status: answer.status, at: Date.now() });
    const headers = { 'content-type': 'application/json' };
    if (answer.retryAfter !== undefined) headers['retry-after'] = String(answer.retryAfter);
    return { status: answer.status, headers, body: JSON.stringify(answer.body ?? this.#bodyFor(answer.status)) };
  }

  #bodyFor(status) {
    if (status === 200) return { name: `projects/${this.projectId}/messages/${randomBytes(8).toString('hex')}` };
    if (status === 404) {
      return {
        error: {
          code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND',
          details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }],
        },
      };
    }
    const statuses = { 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 400: 'INVALID_ARGUMENT' };
    return { error: { code: status, message: 'planned failure', status: statuses[status] ?? 'UNKNOWN' } };
  }
}

/** The shape FCM HTTP v1 takes, with the sub-objects the contract asks for; resolves `message`. */
function checkFcmMessage(parsed) {
  const m = parsed?.message;
  const bad = (why) => new Refusal(400, `messages:send: ${why}`);
  if (!m || typeof m !== 'object') throw bad('no message object');
  if (typeof m.token !== 'string' || m.token === '') throw bad('message.token missing');
  if (m.topic !== undefined || m.condition !== undefined) throw bad('message has a topic or condition besides the token');
  const n = m.notification;
  if (!n || typeof n.title !== 'string' || typeof n.body !== 'string') throw bad('notification {title, body} missing');
  if (!m.data || typeof m.data !== 'object') throw bad('data missing');
  for (const [k, v] of Object.entries(m.data)) {
    if (typeof v !== 'string') throw bad(`data.${k} is a ${typeof v}: FCM data values are strings`);
  }
  if (typeof m.android?.collapse_key !== 'string' || m.android.collapse_key === '') throw bad('android.collapse_key missing');
  const collapseId = m.apns?.headers?.['apns-collapse-id'];
  if (typeof collapseId !== 'string' || collapseId === '' || Buffer.byteLength(collapseId) > 64) {
    throw bad(`apns.headers["apns-collapse-id"] ${JSON.stringify(collapseId)} (1-64 bytes)`);
  }
  return m;
}

/** Starts the Web Push receiver; `vapidPublicKey` / `vapidSubject` pin what VAPID must carry. */
export function startWebPushReceiver(options = {}) { return new WebPushReceiver(options).listen(); }

/** Starts the FCM receiver for project `projectId`. */
export function startFcmReceiver({ projectId = 'courier-e2e' } = {}) { return new FcmReceiver({ projectId }).listen(); }
