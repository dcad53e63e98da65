// Push notifications end to end (contract "Contract v3 additions → Push"): a real Courier
// notifies users who are not connected through local receivers that play a Web Push
// service and FCM and verify what a real one would (push-receivers.mjs): VAPID, aes128gcm,
// the OAuth2 assertion and bearer token. Scenarios a-g run on the all-in-one `courier`
// (the pusher inside it); h kills a separate `pusher` process of a split deployment.
// Absence is never watched for a while: a scenario ends when the pusher's counters
// (METRICS_PORT) show its decision and its queues are drained (push-helpers.mjs).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { createUsers } from './fault-scenario.mjs';
import { Deployment, freePorts, sleep, useDeployment, waitFor } from './harness.mjs';
import {
  PushMetrics, assertPayload, assertWebPushHeaders, latestOf, listSubscriptions, persisted, simple, subscribeFcm,
  subscribeWebPush, waitDrained,
} from './push-helpers.mjs';
import { startFcmReceiver, startWebPushReceiver, vapidKeys } from './push-receivers.mjs';

const DELAY_MS = 2000; // PUSH_DELAY_MS
const COALESCE_SECS = 3; // PUSH_COALESCE_SECS
const SUBJECT = 'mailto:ops@example.com';
const PROJECT = 'courier-e2e';

const vapid = vapidKeys();
const webpush = await startWebPushReceiver({ vapidPublicKey: vapid.publicKey, vapidSubject: SUBJECT });
const fcm = await startFcmReceiver({ projectId: PROJECT });
const tmp = await mkdtemp(path.join(os.tmpdir(), 'courier-push-'));
const serviceAccount = await fcm.serviceAccountFile(tmp);
const [metricsPort] = await freePorts(1);

/** The push configuration of a deployment, with a queue of its own. */
const pushEnv = (queue) => ({
  PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
  PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
  PUSH_VAPID_SUBJECT: SUBJECT,
  FCM_PROJECT_ID: PROJECT,
  FCM_SERVICE_ACCOUNT_FILE: serviceAccount,
  FCM_ENDPOINT: fcm.origin,
  PUSH_DELAY_MS: String(DELAY_MS),
  PUSH_COALESCE_SECS: String(COALESCE_SECS),
  PUSH_ALLOW_HTTP_ENDPOINTS: 'true',
  PUSH_QUEUE: queue,
});
const QUEUE = `chat.push.e2e_${randomBytes(4).toString('hex')}`;
const d = useDeployment({ mode: 'all-in-one', env: { ...pushEnv(QUEUE), METRICS_PORT: String(metricsPort) } });
const metrics = new PushMetrics(`http://127.0.0.1:${metricsPort}`);
const DROPPED = 'courier_push_dropped_total';
const SENT = 'courier_push_sent_total';

after(async () => {
  await Promise.all([webpush.close(), fcm.close()]);
  await rm(tmp, { recursive: true, force: true });
});

/** Starts a scenario's observation: the counters' and the receivers' failures' baselines. */
async function begin(m = metrics) {
  if (m) await m.mark();
  return { webpush: webpush.failures.length, fcm: fcm.failures.length };
}

/**
 * Ends a scenario: the pusher idle (its queues drained), neither receiver refused anything
 * since `start` (a `begin()`), nothing dead-lettered.
 */
async function settled(start, dep = d, queue = QUEUE) {
  const queues = await waitDrained(dep, queue);
  assert.deepEqual(webpush.failures.slice(start.webpush), [], 'the Web Push receiver refused nothing');
  assert.deepEqual(fcm.failures.slice(start.fcm), [], 'the FCM receiver refused nothing');
  const dlq = queues.find((q) => q.name === `${queue}.dlq`);
  assert.equal(dlq?.messages ?? 0, 0, `nothing dead-lettered: ${JSON.stringify(queues)}`);
}

/** Sends `content` as `from` and resolves the message as persisted. */
async function sendAndGet(from, chatId, content) {
  const { clientMessageId } = await d.send(from.accessToken, chatId, content);
  return persisted(d, from.accessToken, chatId, clientMessageId);
}

d.test('a. an offline user gets exactly one Web Push, encrypted, VAPID-signed, Topic = the chat', { timeout: 90_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const key = await d.api('GET', '/push/vapid-public-key', { token: bob.accessToken });
  assert.equal(key.status, 200);
  assert.deepEqual(key.body, { publicKey: vapid.publicKey });
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const again = await d.api('POST', '/push/subscriptions', { token: bob.accessToken, body: bobPush.sub });
  assert.equal(again.status, 200, 'the same endpoint again updates the subscription');
  assert.equal(again.body.id, bobPush.id);
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const start = await begin();

  const message = await sendAndGet(alice, chat.id, 'lunch at noon?');
  const [push] = await webpush.waitForPushes(bobPush.sub, 1, DELAY_MS + 15_000);
  assert.ok(push.at >= Date.parse(message.sentAt) + DELAY_MS - 50, 'not before sentAt + PUSH_DELAY_MS');
  assertPayload(push.payload, { chatId: chat.id, message, unread: 1, titleHas: 'alice' });
  assertWebPushHeaders(push, { chatId: chat.id, urgency: 'normal' });
  assert.equal(push.vapid.claims.sub, SUBJECT);
  await settled(start);
  assert.equal(webpush.pushes(bobPush.sub).length, 1, 'exactly one push');
  assert.equal(await metrics.delta(SENT, { kind: 'webpush' }), 1);
});

d.test('a. an offline user with an FCM token gets one FCM message (OAuth2 token, collapse key = the chat)', { timeout: 90_000 }, async () => {
  const { alice, carol } = await createUsers(d, ['alice', 'carol']);
  const { token } = await subscribeFcm(d, fcm, carol);
  const chat = await d.createDirect(alice.accessToken, carol.user.id);
  const grantsBefore = fcm.grants.length;
  const start = await begin();

  const message = await sendAndGet(alice, chat.id, 'the build is green');
  const [sent] = await fcm.waitForMessages(token, 1, DELAY_MS + 15_000);
  const m = sent.message;
  assert.equal(m.token, token);
  assert.equal(m.notification.body, message.content);
  assert.ok(m.notification.title.includes('alice'), `notification.title ${m.notification.title}`);
  assert.equal(m.data.chatId, chat.id);
  assert.equal(m.data.messageId, message.id);
  assert.equal(m.data.unread, '1');
  assert.equal(Date.parse(m.data.sentAt), Date.parse(message.sentAt));
  assert.ok([chat.id, simple(chat.id)].includes(m.android.collapse_key), `collapse_key ${m.android.collapse_key}`);
  assert.ok([chat.id, simple(chat.id)].includes(m.apns.headers['apns-collapse-id']), 'apns-collapse-id');
  assert.ok(fcm.grants.length > 0, 'an access token was obtained with the service account');
  await settled(start);
  assert.equal(fcm.messages(token).length, 1, 'exactly one message');
  assert.equal(await metrics.delta(SENT, { kind: 'fcm' }), 1);
  assert.ok(fcm.grants.length - grantsBefore <= 1, 'the access token is cached, not fetched per send');
});

d.test('a. a long message is truncated cleanly: at most 3000 bytes, on a character boundary, with "…"', { timeout: 90_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const content = '€uro ✓ '.repeat(571).slice(0, 3990); // 11 bytes per 7 characters
  const start = await begin(null);
  const message = await sendAndGet(alice, chat.id, content);
  const [push] = await webpush.waitForPushes(bobPush.sub, 1, DELAY_MS + 15_000);
  assert.ok(Buffer.byteLength(push.plaintext) <= 3000, `${Buffer.byteLength(push.plaintext)} bytes`);
  assert.ok(!push.plaintext.includes('\uFFFD'), 'no character cut in half');
  assert.ok(push.payload.body.endsWith('…'), 'the cut is marked');
  assert.ok(content.startsWith(push.payload.body.slice(0, -1)), 'the body is a prefix of the message');
  assert.equal(push.payload.messageId, message.id);
  await settled(start);
});

d.test('b. an online user gets none; the offline one beside them does; the sender gets none', { timeout: 90_000 }, async () => {
  const { alice, bob, carol } = await createUsers(d, ['alice', 'bob', 'carol']);
  const [alicePush, bobPush, carolPush] = await Promise.all(
    [alice, bob, carol].map((u) => subscribeWebPush(d, webpush, u)));
  const group = await d.createGroup(alice.accessToken, 'online', [bob.user.id, carol.user.id]);
  await d.connect(0, bob.accessToken, { label: 'bob online' });
  const start = await begin();

  const message = await sendAndGet(alice, group.id, 'who is around?');
  const [push] = await webpush.waitForPushes(carolPush.sub, 1, DELAY_MS + 15_000);
  assertPayload(push.payload, { chatId: group.id, message, unread: 1, group: { sender: alice, title: 'online' } });
  assert.equal(await metrics.waitDelta(DROPPED, { reason: 'online' }, 1), 1, 'bob was dropped as online');
  await settled(start);
  assert.equal(webpush.attempts(bobPush.sub).length, 0, 'nothing to the online user');
  assert.equal(webpush.attempts(alicePush.sub).length, 0, 'nothing to the sender');
  assert.equal(await metrics.delta(DROPPED, { reason: 'online' }), 1);
});

d.test('c. a user who reads within the delay gets none', { timeout: 90_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const start = await begin();

  const { clientMessageId } = await d.send(alice.accessToken, chat.id, 'read me quickly');
  const message = await persisted(d, bob.accessToken, chat.id, clientMessageId);
  const read = await d.api('POST', `/chats/${chat.id}/read`, { token: bob.accessToken, body: { sequence: message.sequence } });
  assert.equal(read.status, 204, JSON.stringify(read.body));
  assert.ok(Date.now() < Date.parse(message.sentAt) + DELAY_MS,
    'the read was stored before sentAt + PUSH_DELAY_MS (else this runner is too slow for the scenario)');
  assert.equal(await metrics.waitDelta(DROPPED, { reason: 'read' }, 1), 1);
  await settled(start);
  assert.equal(webpush.attempts(bobPush.sub).length, 0, 'no push for a read message');
});

d.test('d. a burst of 20 gives one push with unread 20 and the latest message; the rest are coalesced', { timeout: 120_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const start = await begin();

  await Promise.all(Array.from({ length: 20 }, (_, i) => d.send(alice.accessToken, chat.id, `burst ${i + 1}`)));
  const latest = await latestOf(d, alice.accessToken, chat.id, 20);
  const { messages } = await d.history(alice.accessToken, chat.id, { limit: 100 });
  const spread = Date.parse(latest.sentAt) - Math.min(...messages.map((m) => Date.parse(m.sentAt)));
  assert.ok(spread < DELAY_MS - 500, `the burst spans ${spread} ms, well within PUSH_DELAY_MS`);
  const [first] = await webpush.waitForPushes(bobPush.sub, 1, DELAY_MS + 15_000);
  assertPayload(first.payload, { chatId: chat.id, message: latest, unread: 20, titleHas: 'alice' });
  assert.equal(await metrics.waitDelta(DROPPED, { reason: 'coalesced' }, 19), 19, 'the other 19 coalesced');

  // One more: within the window it is coalesced and the trailing flush carries it; after,
  // it is a leading push of its own. Either way it is the second push, so a stray
  // trailing push of the burst (which would come first) cannot hide.
  const last = await sendAndGet(alice, chat.id, 'and one more');
  const pushes = await webpush.waitForPushes(bobPush.sub, 2, COALESCE_SECS * 1000 + DELAY_MS + 15_000);
  assertPayload(pushes[1].payload, { chatId: chat.id, message: last, unread: 21, titleHas: 'alice' });
  assert.equal(pushes[1].vapid.token, first.vapid.token, 'the VAPID JWT of an origin is cached, not signed per push');
  assert.ok(pushes[1].at - first.at >= COALESCE_SECS * 1000 - 250,
    `at most one push per PUSH_COALESCE_SECS: the second came ${pushes[1].at - first.at} ms after the first`);
  await settled(start);
  assert.equal(webpush.pushes(bobPush.sub).length, 2, 'one push for the burst, one for the message after it');
});

d.test('e. a mention in a muted chat still notifies; other messages there do not; muteMentions silences mentions', { timeout: 120_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const [muted, silent] = await Promise.all([
    d.createGroup(alice.accessToken, 'muted', [bob.user.id]),
    d.createGroup(alice.accessToken, 'silent', [bob.user.id]),
  ]);
  const until = new Date(Date.now() + 3600_000).toISOString();
  const mute = await d.api('PUT', `/chats/${muted.id}/settings`, { token: bob.accessToken, body: { mutedUntil: until } });
  assert.equal(mute.status, 200, JSON.stringify(mute.body));
  const silence = await d.api('PUT', `/chats/${silent.id}/settings`,
    { token: bob.accessToken, body: { mutedUntil: until, muteMentions: true } });
  assert.equal(silence.status, 200, JSON.stringify(silence.body));
  const start = await begin();

  await sendAndGet(alice, muted.id, 'nothing urgent');
  assert.equal(await metrics.waitDelta(DROPPED, { reason: 'muted' }, 1), 1, 'a plain message in a muted chat');
  assert.equal(webpush.attempts(bobPush.sub).length, 0);

  const mention = await sendAndGet(alice, muted.id, `@${bob.username} please look`);
  assert.deepEqual(mention.mentions, [bob.user.id]);
  const [push] = await webpush.waitForPushes(bobPush.sub, 1, DELAY_MS + 15_000);
  assertPayload(push.payload, { chatId: muted.id, message: mention, unread: 2, group: { sender: alice, title: 'muted' } });
  assertWebPushHeaders(push, { chatId: muted.id, urgency: 'high' });

  await sendAndGet(alice, silent.id, `@${bob.username} also here`);
  assert.equal(await metrics.waitDelta(DROPPED, { reason: 'muted' }, 2), 2, 'a mention where mentions are muted too');
  await settled(start);
  assert.deepEqual(webpush.attempts(bobPush.sub).map((p) => p.payload.messageId), [mention.id]);
});

d.test('f. 410 (Web Push) and UNREGISTERED (FCM) prune the subscription', { timeout: 90_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const bobFcm = await subscribeFcm(d, fcm, bob);
  webpush.plan(bobPush.sub, [410]);
  fcm.plan(bobFcm.token, [404]);
  const listed = await listSubscriptions(d, bob);
  assert.deepEqual(listed.map((s) => s.id).sort(), [bobPush.id, bobFcm.id].sort());
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const start = await begin();

  await sendAndGet(alice, chat.id, 'anyone there?');
  await webpush.waitForAttempts(bobPush.sub, 1, DELAY_MS + 15_000);
  await fcm.waitForAttempts(bobFcm.token, 1, DELAY_MS + 15_000);
  assert.equal(await metrics.waitDelta('courier_push_pruned_total', { kind: 'webpush' }, 1), 1);
  assert.equal(await metrics.waitDelta('courier_push_pruned_total', { kind: 'fcm' }, 1), 1);
  await waitFor(async () => (await listSubscriptions(d, bob)).length === 0, 10_000,
    { message: 'both subscriptions gone from GET /push/subscriptions' });
  await settled(start);
  assert.equal(webpush.attempts(bobPush.sub).length, 1, 'a 410 is not retried');
  assert.equal(fcm.attempts(bobFcm.token).length, 1, 'UNREGISTERED is not retried');
});

d.test('g. 503 with Retry-After: 1 is retried after it and delivered once, the same payload', { timeout: 90_000 }, async () => {
  const { alice, bob } = await createUsers(d, ['alice', 'bob']);
  const bobPush = await subscribeWebPush(d, webpush, bob);
  const bobFcm = await subscribeFcm(d, fcm, bob);
  webpush.plan(bobPush.sub, [{ status: 503, retryAfter: 1 }]);
  fcm.plan(bobFcm.token, [{ status: 503, retryAfter: 1 }]);
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const grantsBefore = fcm.grants.length;
  const start = await begin();

  const message = await sendAndGet(alice, chat.id, 'try again later');
  const tries = await webpush.waitForAttempts(bobPush.sub, 2, DELAY_MS + 20_000);
  assert.deepEqual(tries.map((t) => t.status), [503, 201]);
  assert.ok(tries[1].at - tries[0].at >= 950, `retried ${tries[1].at - tries[0].at} ms later, Retry-After: 1`);
  assert.deepEqual(tries[1].payload, tries[0].payload, 'the same notification');
  assertPayload(tries[1].payload, { chatId: chat.id, message, unread: 1, titleHas: 'alice' });
  const sends = await fcm.waitForAttempts(bobFcm.token, 2, DELAY_MS + 20_000);
  assert.deepEqual(sends.map((s) => s.status), [503, 200]);
  assert.ok(sends[1].at - sends[0].at >= 950, `FCM retried ${sends[1].at - sends[0].at} ms later`);
  assert.deepEqual(sends[1].message, sends[0].message);
  await settled(start);
  assert.equal(webpush.attempts(bobPush.sub).length, 2, 'delivered once: no attempt after the 201');
  assert.equal(fcm.attempts(bobFcm.token).length, 2);
  assert.equal(await metrics.delta('courier_push_retried_total', { kind: 'webpush' }), 1);
  assert.equal(await metrics.delta('courier_push_retried_total', { kind: 'fcm' }), 1);
  assert.equal(await metrics.delta(SENT, { kind: 'webpush' }), 1);
  assert.equal(await metrics.delta(SENT, { kind: 'fcm' }), 1);
  assert.ok(fcm.grants.length - grantsBefore <= 1, 'the retry reuses the cached access token');
});

test('h. kill -9 of the pusher mid-burst: every chat\'s latest message is pushed, no message twice', { timeout: 240_000 }, async () => {
  const CHATS = 6;
  const ROUNDS = 14; // one message into every chat per round
  const queue = `chat.push.e2e_${randomBytes(4).toString('hex')}`;
  const k = new Deployment({ mode: 'split', env: pushEnv(queue) });
  await k.start();
  try {
    const [pusherPort, pusherMetrics] = await freePorts(2);
    k.spawn('pusher', 'pusher', `http://127.0.0.1:${pusherPort}`,
      { PUSHER_PORT: String(pusherPort), METRICS_PORT: String(pusherMetrics) });
    await k.process('pusher').waitReady();
    const users = await createUsers(k, ['sender', ...Array.from({ length: CHATS }, (_, i) => `rcpt${i}`)]);
    const lanes = await Promise.all(Array.from({ length: CHATS }, async (_, i) => {
      const rcpt = users[`rcpt${i}`];
      const chat = await k.createDirect(users.sender.accessToken, rcpt.user.id);
      const { sub } = await subscribeWebPush(k, webpush, rcpt);
      return { rcpt, chat, sub };
    }));
    const anyPush = () => lanes.some((l) => webpush.pushes(l.sub).length > 0);
    const start = await begin(null);

    let rounds = 0;
    const stream = (async () => {
      for (; rounds < ROUNDS; rounds += 1) {
        await Promise.all(lanes.map((l) => k.send(users.sender.accessToken, l.chat.id, `round ${rounds + 1}`)));
        await sleep(300); // pacing: the burst spans the kill
      }
    })();
    stream.catch(() => {}); // awaited below; a failed send must not be an unhandled rejection meanwhile
    await webpush.waitFor(anyPush, DELAY_MS + 20_000, { message: 'a first push of the burst' });
    const roundsAtKill = rounds;
    const exit = await k.process('pusher').kill('SIGKILL');
    assert.equal(exit?.signal, 'SIGKILL');
    assert.ok(roundsAtKill < ROUNDS, `killed mid-burst (after ${roundsAtKill} of ${ROUNDS} rounds)`);
    await stream;
    await k.restart('pusher');

    const latest = await Promise.all(lanes.map((l) => latestOf(k, users.sender.accessToken, l.chat.id, ROUNDS)));
    const gotLatest = (l, i) => webpush.pushes(l.sub).some((p) => p.payload.messageId === latest[i].id);
    await webpush.waitFor(() => lanes.every(gotLatest), 60_000, {
      message: () => `the latest message of every chat (missing: ${lanes.filter((l, i) => !gotLatest(l, i)).map((l) => l.chat.id)})`,
    });
    await settled(start, k, queue);
    k.assertAlive();
    lanes.forEach((l, i) => {
      const pushes = webpush.pushes(l.sub);
      const ids = pushes.map((p) => p.payload.messageId);
      assert.equal(new Set(ids).size, ids.length, `chat ${l.chat.id}: a message pushed twice: ${ids}`);
      assert.ok(pushes.every((p) => p.payload.chatId === l.chat.id));
      const final = pushes.find((p) => p.payload.messageId === latest[i].id);
      assertPayload(final.payload, { chatId: l.chat.id, message: latest[i], unread: ROUNDS, titleHas: 'sender' });
    });
    process.stdout.write(`push-kill rounds=${ROUNDS} chats=${CHATS} killedAfterRound=${roundsAtKill} `
      + `pushes=${lanes.map((l) => webpush.pushes(l.sub).length).join(',')}\n`);
  } catch (err) {
    k.dumpLogs('after the failure of the pusher kill scenario');
    throw err;
  } finally {
    await k.stop();
  }
});
