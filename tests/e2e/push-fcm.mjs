// The FCM HTTP v1 test receiver: an OAuth2 token endpoint that takes a service account's
// RS256 JWT assertion (RFC 7523) and `POST /v1/projects/<id>/messages:send` that takes only
// the bearer tokens it issued and FCM's message shape; answers per plan (200 {name},
// 404 UNREGISTERED, 503 with Retry-After, ...). Started by `startFcmReceiver`
// (push-receivers.mjs).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { verifyJwt } from './push-crypto.mjs';
import { Receiver, Refusal, nowSecs } from './push-receiver-base.mjs';

const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** FCM HTTP v1: POST /token (OAuth2 JWT bearer grant) and POST /v1/projects/<id>/messages:send. */
export class FcmReceiver extends Receiver {
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

  /** Resolves the messages to `token` answered 200 once there are at least `n`. */
  waitForMessages(token, n = 1, timeoutMs = 15_000) {
    return this.waitForCount(() => this.messages(token), n, timeoutMs, `message(s) to ${token.slice(0, 12)}…`);
  }

  /** Resolves the sends to `token` once there are at least `n`, whatever was answered. */
  waitForAttempts(token, n = 1, timeoutMs = 15_000) {
    return this.waitForCount(() => this.attempts(token), n, timeoutMs, `send(s) to ${token.slice(0, 12)}…`);
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
