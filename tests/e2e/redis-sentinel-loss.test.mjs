// No silent loss after a Redis failover (issue 28, Redis Sentinel): replication is
// asynchronous, so the promoted replica may lack the last events of a user's stream.
// This test forces that loss on a Sentinel set of its own: the replica is paused
// (SIGSTOP), events are written to the master only, the master is killed (-9), the
// replica resumed and promoted. A device resuming from an offset taken after the lost
// writes, or from one that predates them, must get `recovered: false` (and re-sync),
// never `recovered: true` with a hole; offsets of the new epoch recover as before.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { EVENTS } from './contract.mjs';
import { Deployment, waitFor } from './harness.mjs';
import { startSentinelSet } from './instances-redis-sentinel.mjs';
import { RECOVERED, waitForEvent } from './realtime.mjs';

const box = { set: null };
const d = new Deployment({ mode: 'split', gateways: 1, workers: 1, services: () => box.set.services });
before(async () => {
  box.set = await startSentinelSet();
  Object.assign(d.extraEnv, box.set.courierEnv);
  try {
    await d.start();
  } catch (err) {
    await box.set.stop();
    throw err;
  }
}, { timeout: 180_000 });
after(async () => {
  try {
    await box.set?.follow(d).catch(() => { /* no master: the set goes anyway */ });
    await d.stop();
  } finally { await box.set?.stop(); }
}, { timeout: 120_000 });

/** The payload of the chat.message.new carrying `content` (waits for it). */
async function newMessage(client, content) {
  const e = await waitForEvent(client, (x) => x.event === EVENTS.NEW && x.payload?.message?.content === content,
    10_000, `${EVENTS.NEW} "${content}"`);
  return e.payload;
}

/** The session.recovered of a socket. */
async function recoveredOf(client) {
  return (await waitForEvent(client, (e) => e.event === RECOVERED, 10_000, RECOVERED)).payload;
}

/** Waits until the user's stream on the Redis node `port` holds an entry with `content`. */
async function inStream(port, user, content) {
  const key = `${d.redisPrefix}user:${user}:events`;
  await waitFor(async () => (await box.set.cli(port, ['XRANGE', key, '-', '+'])).includes(content), 10_000,
    { message: `"${content}" in ${key} on ${port}` });
}

test('a promoted replica that lost writes: offsets after or before the loss get recovered:false, never a hole', { timeout: 120_000 }, async () => {
  const set = box.set;
  const [ana, ben] = await d.registerAll('ana', 'ben');
  const chat = await d.createDirect(ana.accessToken, ben.user.id);
  const bm = async (content) => d.send(ana.accessToken, chat.id, content);

  const first = await d.connect(0, ben.accessToken, { label: 'ben#1' });
  assert.equal((await recoveredOf(first)).recovered, false, 'a fresh connection');
  await bm('m1');
  const o1 = (await newMessage(first, 'm1')).offset;
  assert.match(o1, /^\d+-\d+$/, 'the first epoch keeps <ms>-<n> offsets');
  const oldMaster = await set.master();
  await set.replicated(set.masterPort, set.replicaPort);

  // Replication stops: what follows reaches the master only.
  await set.cutReplication(set.masterPort, set.replicaPort);
  await bm('m2');
  const o2 = (await newMessage(first, 'm2')).offset;
  first.close();
  await bm('m3'); // ben is away: it waits in his stream (on the master alone)
  await inStream(set.masterPort, ben.user.id, 'm3');

  const killAt = Date.now();
  await set.kill(set.masterPort);
  await set.resume(set.replicaPort);
  const now = await set.waitFailover(oldMaster);
  const promotedAt = Date.now();
  assert.equal(now, `127.0.0.1:${set.replicaPort}`);
  process.stdout.write(`sentinel-loss: kill -> promotion ${promotedAt - killAt} ms\n`);
  const lost = await set.cli(set.replicaPort, ['XRANGE', `${d.redisPrefix}user:${ben.user.id}:events`, '-', '+']);
  assert.ok(!lost.includes('m3') && !lost.includes('m2'), 'the promoted replica lacks m2 and m3 (the loss is real)');

  // Sends go on; m4 lands in the new master's copy of ben's stream, after o2.
  await bm('m4');
  await inStream(set.replicaPort, ben.user.id, 'm4');

  for (const [what, offset] of [['taken after the lost m2 (m3 lost too)', o2], ['predating the loss', o1]]) {
    const c = await d.connect(0, ben.accessToken, { label: `ben@${what}`, auth: { offset } });
    const r = await recoveredOf(c);
    const replayed = c.events.filter((e) => e.event === EVENTS.NEW).map((e) => e.payload.message.content);
    if (r.recovered) {
      // Only acceptable if nothing is missing: every message after the offset.
      const want = offset === o1 ? ['m2', 'm3', 'm4'] : ['m3', 'm4'];
      assert.deepEqual(replayed.filter((x) => want.includes(x)), want, `recovered:true from an offset ${what} with a hole`);
    }
    assert.equal(r.recovered, false, `an offset ${what}: recovered:false (the promoted replica cannot prove it complete)`);
    assert.match(r.offset, /^\d+:\d+-\d+$/, 'the new epoch shows in the offset');
    c.close();
  }

  // The re-sync finds every message in PostgreSQL.
  const history = await d.history(ben.accessToken, chat.id);
  assert.deepEqual(history.messages.map((m) => m.content).sort(), ['m1', 'm2', 'm3', 'm4']);

  // Offsets of the new epoch recover as before.
  const again = await d.connect(0, ben.accessToken, { label: 'ben#fresh' });
  const base = (await recoveredOf(again)).offset;
  again.close();
  await bm('m5');
  await inStream(set.replicaPort, ben.user.id, 'm5');
  const resumed = await d.connect(0, ben.accessToken, { label: 'ben#resumed', auth: { offset: base } });
  const r = await recoveredOf(resumed);
  assert.equal(r.recovered, true, `an offset of the new epoch recovers: ${JSON.stringify(r)}`);
  const m5 = resumed.events.find((e) => e.event === EVENTS.NEW && e.payload.message.content === 'm5');
  assert.ok(m5, 'm5 replayed');
  assert.equal(m5.payload.offset.split(':')[0], base.split(':')[0], 'the same epoch');
});
