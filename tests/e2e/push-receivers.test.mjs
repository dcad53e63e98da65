// The push test receivers (push-receivers.mjs) really verify: RFC 8291 Appendix A decrypts;
// a message encrypted by an independent implementation (npm `http_ece`, as the `web-push`
// library uses it) and signed in Node is recorded with its plaintext; every way a request
// can be wrong (signature, aud, exp, sub, k, body, headers) is answered 400 and recorded;
// the plans answer in order; the FCM token endpoint takes only an assertion signed with
// the service account's key, and messages:send only its bearer tokens and FCM's shape.

import assert from 'node:assert/strict';
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { b64u, decryptAes128gcm, p256PrivateKey, signJwt, unb64u, vapidKeys } from './push-crypto.mjs';
import { startFcmReceiver, startWebPushReceiver } from './push-receivers.mjs';

const require = createRequire(import.meta.url);
const ece = require('http_ece');
const webPushLib = require('web-push');
const SUBJECT = 'mailto:ops@example.com';
const now = () => Math.floor(Date.now() / 1000);

test('RFC 8291 Appendix A: the example message decrypts to its plaintext', () => {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(unb64u('q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94'));
  assert.equal(b64u(ecdh.getPublicKey()),
    'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4');
  const body = unb64u('DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInm'
    + 'YWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN');
  const plain = decryptAes128gcm(body, { ecdh, auth: unb64u('BTBZMqHH6r4Tts7J_aSIgg') });
  assert.equal(plain.toString('utf8'), 'When I grow up, I want to be a watermelon');
  const tampered = Buffer.from(body);
  tampered[tampered.length - 20] ^= 1;
  assert.throws(() => decryptAes128gcm(tampered, { ecdh, auth: unb64u('BTBZMqHH6r4Tts7J_aSIgg') }), /authentication failed/);
});

test('vapidKeys: a 65-byte uncompressed public point that belongs to the 32-byte private scalar', () => {
  const keys = vapidKeys();
  const pub = unb64u(keys.publicKey);
  assert.equal(pub.length, 65);
  assert.equal(pub[0], 4);
  assert.equal(unb64u(keys.privateKey).length, 32);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(unb64u(keys.privateKey));
  assert.ok(ecdh.getPublicKey().equals(pub));
});

describe('Web Push receiver', () => {
  const vapid = vapidKeys();
  let rx;
  before(async () => { rx = await startWebPushReceiver({ vapidPublicKey: vapid.publicKey, vapidSubject: SUBJECT }); });
  after(() => rx.close());

  /** What an application server sends: http_ece encryption and a VAPID JWT signed in Node. */
  function request(sub, payload, { claims = {}, keys = vapid, k = keys.publicKey, auth, headers = {}, body } = {}) {
    const sender = createECDH('prime256v1');
    sender.generateKeys();
    const encrypted = body ?? ece.encrypt(Buffer.from(JSON.stringify(payload)), {
      version: 'aes128gcm', dh: sub.keys.p256dh, privateKey: sender,
      authSecret: auth ?? sub.keys.auth, salt: randomBytes(16).toString('base64url'),
    });
    const jwt = signJwt({ aud: rx.origin, exp: now() + 12 * 3600, sub: SUBJECT, ...claims }, p256PrivateKey(keys), 'ES256');
    return fetch(sub.endpoint, {
      method: 'POST',
      headers: {
        'content-encoding': 'aes128gcm', 'content-type': 'application/octet-stream', ttl: '60',
        urgency: 'high', topic: 'c0ffee', authorization: `vapid t=${jwt}, k=${k}`, ...headers,
      },
      body: encrypted,
    });
  }

  test('a well-formed push is decrypted and recorded, and wakes a waiter', async () => {
    const sub = rx.newSubscription();
    assert.match(sub.endpoint, new RegExp(`^${rx.origin}/push/[A-Za-z0-9_-]+$`));
    assert.equal(sub.expirationTime, null);
    assert.equal(unb64u(sub.keys.p256dh).length, 65);
    assert.equal(unb64u(sub.keys.auth).length, 16);
    const waiting = rx.waitForPushes(sub, 1, 5000);
    const payload = { chatId: 'c', messageId: 'm', title: 'Ann', body: 'hi €', unread: 1, sentAt: new Date().toISOString() };
    const res = await request(sub, payload);
    assert.equal(res.status, 201);
    assert.ok(res.headers.get('location'));
    const [got] = await waiting;
    assert.deepEqual(got.payload, payload);
    assert.deepEqual({ ttl: got.headers.ttl, urgency: got.headers.urgency, topic: got.headers.topic },
      { ttl: 60, urgency: 'high', topic: 'c0ffee' });
    assert.equal(got.vapid.claims.aud, rx.origin);
    assert.deepEqual(rx.failures, []);
  });

  test('a request as the web-push library (a reference sender) makes it is accepted', async () => {
    const sub = rx.newSubscription();
    const payload = { chatId: 'c', unread: 3, body: 'ünïcödé ✓' };
    const details = webPushLib.generateRequestDetails(sub, JSON.stringify(payload), {
      vapidDetails: { subject: SUBJECT, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: 120, urgency: 'low', topic: 'chat42', contentEncoding: 'aes128gcm',
    });
    const { 'Content-Length': _, ...headers } = details.headers;
    const res = await fetch(details.endpoint, { method: details.method, headers, body: details.body });
    assert.equal(res.status, 201, await res.text());
    const [got] = rx.pushes(sub);
    assert.deepEqual(got.payload, payload);
    assert.deepEqual([got.headers.ttl, got.headers.urgency, got.headers.topic], [120, 'low', 'chat42']);
  });

  const refusals = [
    ['a JWT signed by another key', { keys: vapidKeys(), k: vapid.publicKey }, /signature does not verify/],
    ['k that is not the configured key', { keys: (() => vapidKeys())() }, /not the configured application server key/],
    ['a wrong aud', { claims: { aud: 'http://127.0.0.1:1' } }, /aud/],
    ['an aud with a path', { claims: { aud: 'ORIGIN/push' } }, /aud/],
    ['an expired exp', { claims: { exp: now() - 10 } }, /not in the future/],
    ['an exp more than 24 h ahead', { claims: { exp: now() + 25 * 3600 } }, /more than 24 h/],
    ['no sub', { claims: { sub: undefined } }, /sub/],
    ['another sub', { claims: { sub: 'mailto:someone@example.com' } }, /not the configured/],
    ['the body encrypted with another auth secret', { auth: b64u(randomBytes(16)) }, /authentication failed/],
    ['Content-Encoding aesgcm', { headers: { 'content-encoding': 'aesgcm' } }, /Content-Encoding/],
    ['no TTL', { headers: { ttl: '' } }, /TTL/],
    ['an unknown Urgency', { headers: { urgency: 'urgent' } }, /Urgency/],
    ['a Topic over 32 characters', { headers: { topic: 'a'.repeat(33) } }, /Topic/],
    ['the WebPush scheme of old drafts', { headers: { authorization: 'WebPush abc' } }, /vapid scheme/],
  ];
  for (const [what, opts, reason] of refusals) {
    test(`refused with 400 and recorded: ${what}`, async () => {
      const sub = rx.newSubscription();
      if (opts.claims?.aud?.startsWith('ORIGIN')) opts.claims.aud = opts.claims.aud.replace('ORIGIN', rx.origin);
      const failures = rx.failures.length;
      const res = await request(sub, { x: 1 }, opts);
      assert.equal(res.status, 400, `${what}: ${res.status} ${await res.text()}`);
      assert.equal(rx.failures.length, failures + 1);
      assert.match(rx.failures.at(-1).reason, reason);
      assert.equal(rx.attempts(sub).length, 0, 'nothing recorded as received');
    });
  }

  test('refused with 400 and recorded: a tampered body', async () => {
    const sub = rx.newSubscription();
    const sender = createECDH('prime256v1');
    sender.generateKeys();
    const body = ece.encrypt(Buffer.from('{"a":1}'), {
      version: 'aes128gcm', dh: sub.keys.p256dh, privateKey: sender, authSecret: sub.keys.auth,
      salt: randomBytes(16).toString('base64url'),
    });
    body[body.length - 1] ^= 0x80;
    const failures = rx.failures.length;
    const res = await request(sub, null, { body });
    assert.equal(res.status, 400);
    assert.match(rx.failures[failures].reason, /authentication failed/);
  });

  test('a waiter fails fast when a request is refused', async () => {
    const sub = rx.newSubscription();
    const waiting = assert.rejects(rx.waitForPushes(sub, 1, 5000), /refused a request/);
    await request(sub, { x: 1 }, { claims: { aud: 'https://elsewhere.example' } });
    await waiting;
  });

  test('plans answer in order, then 201', async () => {
    const sub = rx.newSubscription();
    rx.plan(sub, [410]);
    assert.equal((await request(sub, { n: 1 })).status, 410);
    assert.equal((await request(sub, { n: 2 })).status, 201);
    const other = rx.newSubscription();
    rx.plan(other, [{ status: 503, retryAfter: 1 }, 201]);
    const first = await request(other, { n: 1 });
    assert.equal(first.status, 503);
    assert.equal(first.headers.get('retry-after'), '1');
    assert.equal((await request(other, { n: 1 })).status, 201);
    assert.deepEqual(rx.attempts(other).map((a) => [a.status, a.payload.n]), [[503, 1], [201, 1]]);
    assert.equal(rx.pushes(other).length, 1);
    await assert.rejects(rx.waitForPushes(other, 2, 100), /timed out/);
  });
});

describe('Web Push receiver, sampled verification (the bench\'s mode)', () => {
  const vapid = vapidKeys();
  let rx;
  before(async () => {
    rx = await startWebPushReceiver({ vapidPublicKey: vapid.publicKey, vapidSubject: SUBJECT, verify: 'sample', sampleEvery: 3 });
  });
  after(() => rx.close());

  const send = (sub, n, { tamper = false } = {}) => {
    const details = webPushLib.generateRequestDetails(sub, JSON.stringify({ n }), {
      vapidDetails: { subject: SUBJECT, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: 60, contentEncoding: 'aes128gcm',
    });
    const { 'Content-Length': _, ...headers } = details.headers;
    const body = Buffer.from(details.body);
    if (tamper) body[body.length - 1] ^= 0x80;
    return fetch(details.endpoint, { method: details.method, headers, body });
  };

  test('the 1st and every 3rd request are verified and decrypted, the others only recorded', async () => {
    const sub = rx.newSubscription();
    const statuses = [];
    for (let n = 0; n < 3; n += 1) statuses.push((await send(sub, n, { tamper: n === 2 })).status);
    assert.deepEqual(statuses, [201, 201, 201], 'a tampered body between samples is not looked at');
    assert.deepEqual(rx.pushes(sub).map((p) => [p.verified, p.payload?.n]), [[true, 0], [false, undefined], [false, undefined]]);
    assert.equal((await send(sub, 3, { tamper: true })).status, 400, 'the 4th is a sample: verified');
    assert.match(rx.failures.at(-1).reason, /authentication failed/);
    assert.equal((await send(sub, 4, { tamper: false })).status, 201);
    assert.equal(rx.pushes(sub).length, 4);
    const unknown = await fetch(`${rx.origin}/push/nobody`, { method: 'POST', body: 'x' });
    assert.equal(unknown.status, 404, 'routing and subscriptions are always checked');
  });
});

describe('FCM receiver', () => {
  let rx;
  let dir;
  let account;
  before(async () => {
    rx = await startFcmReceiver({ projectId: 'demo-project' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'push-rx-'));
    account = JSON.parse(await readFile(await rx.serviceAccountFile(dir), 'utf8'));
  });
  after(async () => { await rx.close(); await rm(dir, { recursive: true, force: true }); });

  const assertion = (claims = {}, key = account.private_key) => signJwt({
    iss: account.client_email, scope: 'https://www.googleapis.com/auth/firebase.messaging',
    aud: account.token_uri, iat: now(), exp: now() + 3600, ...claims,
  }, key, 'RS256', { kid: account.private_key_id });
  const tokenRequest = (jwt, grant = 'urn:ietf:params:oauth:grant-type:jwt-bearer') => fetch(account.token_uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grant, assertion: jwt }).toString(),
  });
  const send = (bearer, message) => fetch(`${rx.origin}/v1/projects/demo-project/messages:send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ message }),
  });
  const message = (token, over = {}) => ({
    token, notification: { title: 'Ann', body: 'hi' }, data: { chatId: 'c', unread: '1' },
    android: { collapse_key: 'c' }, apns: { headers: { 'apns-collapse-id': 'c' } }, ...over,
  });

  test('the service-account file is what Google issues, pointing at the receiver', () => {
    assert.equal(account.type, 'service_account');
    assert.equal(account.project_id, 'demo-project');
    assert.match(account.private_key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(account.token_uri, `${rx.origin}/token`);
    assert.match(account.client_email, /@demo-project\.iam\.gserviceaccount\.com$/);
  });

  test('a token for a good assertion; a send with it is recorded and answered {name}; plans', async () => {
    const res = await tokenRequest(assertion());
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3600);
    const token = rx.newToken();
    const waiting = rx.waitForMessages(token, 1, 5000);
    const ok = await send(body.access_token, message(token));
    assert.equal(ok.status, 200);
    assert.match((await ok.json()).name, /^projects\/demo-project\/messages\/\w+$/);
    const [got] = await waiting;
    assert.deepEqual(got.message.data, { chatId: 'c', unread: '1' });

    rx.plan(token, [404, { status: 503, retryAfter: 2 }]);
    const gone = await send(body.access_token, message(token));
    assert.equal(gone.status, 404);
    assert.equal((await gone.json()).error.details[0].errorCode, 'UNREGISTERED');
    const busy = await send(body.access_token, message(token));
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get('retry-after'), '2');
    assert.equal((await send(body.access_token, message(token))).status, 200);
    assert.deepEqual(rx.attempts(token).map((a) => a.status), [200, 404, 503, 200]);
    assert.deepEqual(rx.failures, []);
  });

  const badAssertions = [
    ['signed by another key', () => assertion({}, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey), /signature/],
    ['another aud', () => assertion({ aud: 'https://oauth2.googleapis.com/token' }), /aud/],
    ['another iss', () => assertion({ iss: 'someone@else.iam.gserviceaccount.com' }), /iss/],
    ['without the messaging scope', () => assertion({ scope: 'https://www.googleapis.com/auth/cloud-platform.read-only' }), /scope/],
    ['expired', () => assertion({ iat: now() - 7200, exp: now() - 3600 }), /iat|exp/],
    ['valid for over an hour', () => assertion({ exp: now() + 7200 }), /exp/],
  ];
  for (const [what, make, reason] of badAssertions) {
    test(`the token endpoint refuses an assertion ${what}`, async () => {
      const failures = rx.failures.length;
      const res = await tokenRequest(make());
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, 'invalid_grant');
      assert.match(rx.failures[failures].reason, reason);
    });
  }

  test('sends without an issued bearer token, or not in FCM\'s shape, are refused and recorded', async () => {
    const token = rx.newToken();
    const failures = rx.failures.length;
    assert.equal((await send('ya29.made-up', message(token))).status, 401);
    const { access_token: bearer } = await (await tokenRequest(assertion())).json();
    assert.equal((await send(bearer, message(token, { data: { unread: 1 } }))).status, 400);
    assert.equal((await send(bearer, message(token, { android: {} }))).status, 400);
    assert.equal((await send(bearer, message(token, { apns: { headers: {} } }))).status, 400);
    assert.equal((await send(bearer, message('', {}))).status, 400);
    assert.deepEqual(rx.failures.slice(failures).map((f) => f.reason.split(':')[0]),
      ['Authorization bearer token not issued here or expired', 'messages', 'messages', 'messages', 'messages']);
    assert.equal(rx.attempts(token).length, 0);
  });
});
