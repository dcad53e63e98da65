// Fault: `kill -9` of the active worker during a burst mixing sends, edits, deletes and
// reactions on one chat, with a standby worker. The standby gets the dead worker's unacked
// deliveries again: no change is applied twice (reaction counts exact, one applied row per
// accepted command), none is lost, and every socket ends with the history's state, each
// event once (re-announced events carry the same chat version and are dropped).

import assert from 'node:assert/strict';

import { randomUUID } from 'node:crypto';

import { DEFAULT_EXCHANGE, DEFAULT_QUEUE_PREFIX, partitionOf } from './fault-common.mjs';
import { withAmqp } from './fault-probes.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import { LIFE, assertConverged, assertOnce, burst, stored, timeline } from './lifecycle-helpers.mjs';
import { cursors } from './realtime-helpers.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

d.test('kill -9 of the worker during a mixed lifecycle burst: nothing lost, nothing applied twice', { timeout: 150_000 }, async () => {
  // `worker` started first and holds every partition; `worker-2` waits as standby.
  const standby = await d.addWorker();
  const people = await d.registerAll('alice', 'bob', 'carol');
  const [alice, bob, carol] = people;
  const group = await d.createGroup(alice.accessToken, 'crash', [bob.user.id, carol.user.id]);
  const sockets = [
    ...(await d.connectSockets(alice, [0])),
    ...(await d.connectSockets(bob, [1])),
    ...(await d.connectSockets(carol, [0, 1])),
  ];
  const first = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    d.send(people[i % 3].accessToken, group.id, `m${i}`)));
  const msgs = await Promise.all(first.map((s) => stored(d, alice.accessToken, group.id, s.clientMessageId, 20_000)));

  const { change, accepted } = burst(d, group.id);
  // Waves of mixed operations; the worker dies while the third wave is in flight.
  let sends = 0;
  for (let wave = 0; wave < 8; wave += 1) {
    const ops = [];
    for (const [i, m] of msgs.entries()) {
      if (i % 8 !== wave) continue;
      const author = people[i % 3].accessToken;
      ops.push(change('PATCH', m.id, author, { content: `m${i} edited in wave ${wave}` }));
      if (i % 5 === 0) ops.push(change('DELETE', m.id, author));
      ops.push(...people.map((p) => change('PUT', `${m.id}/reactions/🔥`, p.accessToken)));
      ops.push(change('PUT', `${m.id}/reactions/ok`, carol.accessToken)
        .then(() => change('DELETE', `${m.id}/reactions/ok`, carol.accessToken)));
      ops.push(d.send(people[(i + 1) % 3].accessToken, group.id, `r${i}`).then(() => { sends += 1; }));
    }
    if (wave === 2) {
      const exit = await d.process('worker').kill('SIGKILL');
      assert.equal(exit?.signal, 'SIGKILL', 'the worker was killed');
    }
    await Promise.all(ops);
  }
  assert.ok(standby.running, 'the standby worker runs');
  // Every accepted command is applied once (no-ops too: they leave a row and no event).
  const applied = () => d.sql(`SELECT count(*) FROM applied_commands WHERE chat_id = '${group.id}'
    AND effect::text NOT LIKE '%"type": "chat"%'`).then(Number);
  await waitFor(async () => (await applied()) >= accepted(), 30_000,
    { intervalMs: 200, message: () => `applied commands never reached ${accepted()}` });
  await waitFor(async () => Number(await d.sql(`SELECT count(*) FROM messages WHERE chat_id = '${group.id}'`)) >= 40 + sends,
    30_000, { intervalMs: 200, message: 'every accepted send persisted' });
  const state = await assertConverged(d, alice.accessToken, group.id, sockets, 60_000);
  assert.equal(Object.keys(state).length, 40 + sends, 'every send stored once');
  const seqs = Object.values(state).map((m) => m.sequence).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'sequences without gaps');
  for (const s of sockets) assertOnce(s, group.id);
  for (const m of Object.values(state).filter((x) => !x.deleted && x.content.startsWith('m'))) {
    assert.deepEqual(m.reactions, { '🔥': 3 }, `exact reactions on ${m.content}`);
  }
  assert.equal(await applied(), accepted(), 'one applied row per accepted lifecycle command');
});

d.test('a command delivered twice (a crash between announce and ack) is applied and shown once', { timeout: 60_000 }, async () => {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(alice.accessToken, bob.user.id);
  const sockets = [...(await d.connectSockets(alice, [0])), ...(await d.connectSockets(bob, [1, 0]))];
  const sent = await d.send(alice.accessToken, chat.id, 'react twice');
  const m = await stored(d, alice.accessToken, chat.id, sent.clientMessageId);
  const since = cursors(sockets);
  // What the API would publish, delivered twice with one broker message id.
  const commandId = randomUUID();
  const body = Buffer.from(JSON.stringify({
    commandId, chatId: chat.id, actorId: bob.user.id, kind: 'react', messageId: m.id, emoji: '🔁', add: true,
  }));
  await withAmqp(d, async (conn) => {
    const ch = await conn.createConfirmChannel();
    for (let i = 0; i < 2; i += 1) {
      ch.publish(DEFAULT_EXCHANGE, `${DEFAULT_QUEUE_PREFIX}.${partitionOf(chat.id)}`, body, {
        persistent: true, contentType: 'application/json', messageId: commandId, mandatory: true,
      });
    }
    await ch.waitForConfirms();
    await ch.close();
  });
  // A send behind both copies in the partition: once it arrives, both were handled.
  const marker = await d.send(alice.accessToken, chat.id, 'after both copies');
  for (const s of sockets) {
    await waitFor(() => timeline(s, chat.id, { since: since.get(s) })
      .some((e) => e.payload.message?.clientMessageId === marker.clientMessageId), 10_000,
    { message: `${s.label}: the marker message` });
    const reactions = timeline(s, chat.id, { since: since.get(s) }).filter((e) => e.event === LIFE.REACTION);
    assert.equal(reactions.length, 1, `${s.label}: the change once, got ${JSON.stringify(reactions)}`);
    assert.equal(reactions[0].payload.count, 1);
  }
  const rows = Number(await d.sql(`SELECT count(*) FROM message_reactions WHERE message_id = '${m.id}'`));
  assert.equal(rows, 1, 'applied once');
});
