// A ban arriving while the banned user's sends sit in the queue (contract v3 "Accounts and
// safety", issue 25): with the worker stopped, alice's sends are accepted (202) and queued;
// she is banned by an admin (`POST /admin/users/:id/ban`); once the worker is back, none of them is persisted or announced, and each
// is in the DLQ with x-courier-reason = banned and the ban's reason (as `courier dlq list`
// shows them), while the other members' messages queued among them are delivered.

import assert from 'node:assert/strict';

import { run, useDeployment, waitFor } from './harness.mjs';
import { EV, cursor, expectNone, waitEvent } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 1 });

const N = 5;
const REASON = 'spam links (e2e)';

/** Bans `userId` with `reason`: `POST /admin/users/:id/ban` by an admin granted with the binary. */
async function ban(userId, reason) {
  const mod = await d.register('mod');
  await run(d.binary('courier'), ['admin', 'grant', mod.username], { env: d.env(), cwd: d.created.cwd });
  const res = await d.api('POST', `/admin/users/${userId}/ban`, { token: mod.accessToken, body: { reason } });
  assert.equal(res.status, 204, JSON.stringify(res.body));
}

/** `courier dlq <args>` against the deployment; resolves its parsed JSON output. */
async function dlq(...args) {
  const { stdout } = await run(d.binary('courier'), ['dlq', ...args], { env: d.env(), cwd: d.created.cwd });
  return JSON.parse(stdout);
}

d.test('sends queued before a ban are dead-lettered with its reason, not persisted or delivered', { timeout: 90_000 }, async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const [bobSocket] = await d.connectSockets(bob, [0]);
  const group = await d.createGroup(bob.accessToken, 'team', [alice.user.id, carol.user.id]);
  await waitEvent(bobSocket, 'chat.updated', (p) => p.chat?.id === group.id, { what: 'for the new group' });

  await d.process('worker').kill('SIGTERM');
  const since = cursor(bobSocket);
  const sent = [];
  for (let i = 0; i < N; i += 1) {
    sent.push(await d.send(alice.accessToken, group.id, `queued ${i} from alice`));
    if (i === 2) await d.send(carol.accessToken, group.id, 'carol in between');
  }
  await ban(alice.user.id, REASON);
  // Behind alice's sends in the chat's partition: once bob has it, hers were handled.
  const marker = await d.send(carol.accessToken, group.id, 'carol after the ban');

  await d.restart('worker');
  await waitEvent(bobSocket, EV.NEW, (p) => p.message?.clientMessageId === marker.clientMessageId,
    { since, timeoutMs: 20_000, what: 'for carol\'s message behind the banned sends' });
  const aliceIds = new Set(sent.map((s) => s.clientMessageId));
  await expectNone(d, [bobSocket], EV.NEW, (p) => aliceIds.has(p.message?.clientMessageId),
    { since, what: 'for a banned sender\'s queued message' });

  const history = await d.history(bob.accessToken, group.id);
  assert.deepEqual(history.messages.map((m) => m.content), ['carol in between', 'carol after the ban'],
    'nothing of alice\'s queued sends is stored');
  assert.equal(Number(await d.sql(
    `SELECT count(*) FROM messages WHERE sender_id = '${alice.user.id}'`)), 0);

  // The DLQ publish is confirmed before the batch is acked, after its fan-out.
  await waitFor(async () => (await dlq('count')).count === N, 10_000,
    { message: `the DLQ never held ${N} messages` });
  const dead = await dlq('list', '--limit', String(N + 1));
  assert.equal(dead.length, N, JSON.stringify(dead));
  for (const letter of dead) {
    const desc = JSON.stringify(letter);
    assert.equal(letter.reason, 'banned', desc);
    assert.equal(letter.banReason, REASON, desc);
    assert.equal(letter.lastError, `sender is banned: ${REASON}`, desc);
    assert.equal(letter.attempts, 1, `${desc}: dead-lettered at once, not retried`);
    const body = JSON.parse(letter.body);
    assert.equal(body.senderId, alice.user.id, desc);
    assert.equal(body.chatId, group.id, desc);
  }
  assert.deepEqual(new Set(dead.map((l) => l.brokerMessageId)), new Set(sent.map((s) => s.brokerMessageId)),
    'exactly alice\'s queued sends, under their broker message ids');
  assert.deepEqual(new Set(dead.map((l) => JSON.parse(l.body).clientMessageId)), aliceIds);
});
