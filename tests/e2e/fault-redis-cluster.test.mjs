// Fault: kill -9 of a Redis Cluster master under load, on a cluster of this test's own
// (scripts/redis-cluster.sh: 3 masters, 3 replicas, cluster-node-timeout 1 s; Courier with
// REDIS_CLUSTER_NODES). The master killed is the one owning the slots of the most
// receivers' keys (hash tag `{u:<userId>}`: CRC16 mod 16384, checked against CLUSTER
// KEYSLOT). Until its replica is promoted the cluster is down (cluster-require-full-coverage);
// the API keeps accepting sends (PostgreSQL has the membership: not one 503), the worker
// holds its deliveries. Must show 0 lost, 0 duplicated, 0 gaps, no refused send, and live
// delivery back within COURIER_FAULT_CLUSTER_LIVE_MS (5 s) of the promotion. A device
// that was away during the failover and resumes with its offset gets every event it
// missed, or `recovered: false` (it re-syncs); never `recovered: true` with a hole. The
// killed node, started again, rejoins as a replica of the promoted one. Prints the dark
// windows: kill -> promotion -> first live event.

import assert from 'node:assert/strict';

import { EVENTS } from './contract.mjs';
import { offsetAfter } from './fault-client.mjs';
import {
  assertReadyzNamed, eventually, setupScenario, useFaultDeployment, watchReadyz,
} from './fault.mjs';
import { waitFor } from './harness.mjs';
import { RedisCluster, clusterSlot, startRedisCluster } from './instances-redis-cluster.mjs';
import { RECOVERED, waitForEvent } from './realtime.mjs';

const LIVE_WITHIN_MS = Number(process.env.COURIER_FAULT_CLUSTER_LIVE_MS ?? 5000);

const { d, instance } = useFaultDeployment({ workers: 1, gateways: 2, instance: startRedisCluster });

/** The hash tag of a user's keys in cluster mode (`{prefix}user:{u:<id>}:...`). */
const userTag = (userId) => `u:${userId}`;

/**
 * A device that is away across the failover: connected before it (recording what it
 * holds and its last offset), closed just before the kill, back with auth.offset after
 * the promotion.
 */
class AwayDevice {
  constructor(client, chatIds) {
    this.before = client;
    this.chatIds = chatIds;
    this.after = null;
  }

  /** Message events of a ChatClient: [{chatId, sequence, id}]. */
  static messagesOf(client) {
    return client.events.filter((e) => e.event === EVENTS.NEW || e.event === EVENTS.SAVED)
      .map((e) => ({ chatId: e.payload.chatId, sequence: e.payload.message.sequence, id: e.payload.message.id, offset: e.payload.offset }));
  }

  /** The highest offset the device saw (its recoverable events and session.recovered). */
  lastOffset() {
    let best = null;
    for (const e of this.before.events) {
      const o = e.payload?.offset;
      if (typeof o === 'string' && (e.event === RECOVERED || Object.values(EVENTS).includes(e.event)) && offsetAfter(o, best)) best = o;
    }
    return best;
  }

  /** Closes the socket; resolves the offset it will resume from. */
  leave() {
    this.offset = this.lastOffset();
    this.before.close();
    this.held = AwayDevice.messagesOf(this.before);
    return this.offset;
  }
}

d.test('Redis Cluster: kill -9 of the master owning most receivers under load; nothing lost, doubled or refused; live again within 5 s of the promotion', { timeout: 120_000 }, async () => {
  const s = await setupScenario(d, 'redis-cluster', { recovery: 'sync' });
  const cluster = instance();
  let away = null;
  try {
    // The victim: the master owning the most receivers' slots.
    const masters = await cluster.masters();
    assert.equal(masters.length, 3, `three masters: ${JSON.stringify(masters)}`);
    const receivers = [...new Set(s.clients.map((c) => c.userId))];
    const probeKey = `${d.redisPrefix}user:{${userTag(receivers[0])}}:events`;
    const keyslot = Number((await cluster.cli(masters[0].port, ['CLUSTER', 'KEYSLOT', probeKey])).trim());
    assert.equal(clusterSlot(userTag(receivers[0])), keyslot, `CRC16 slot of ${probeKey} = CLUSTER KEYSLOT`);
    const usersOn = new Map(masters.map((m) => [m.addr, []]));
    for (const u of receivers) usersOn.get(RedisCluster.ownerOf(masters, clusterSlot(userTag(u))).addr).push(u);
    const [victim, victimUsers] = [...usersOn].sort((a, b) => b[1].length - a[1].length)[0];
    const victimPort = Number(victim.split(':')[1]);
    const nameOf = (u) => Object.entries(s.accounts).find(([, a]) => a.user.id === u)[0];
    s.mark(`receivers per master ${JSON.stringify(Object.fromEntries([...usersOn].map(([m, us]) => [m, us.map(nameOf)])))}; victim ${victim}`);

    // The away device: another device of a user whose keys are on the victim.
    const awayUser = nameOf(victimUsers[0]);
    const awayChats = s.chats.filter((c) => c.members.includes(awayUser)).map((c) => c.id);
    away = new AwayDevice(await d.connect(1, s.accounts[awayUser].accessToken, { label: `${awayUser}#away` }), awayChats);

    s.stream({ perSender: 200, rate: 20 });
    await s.acceptedAtLeast(80);
    await waitFor(() => AwayDevice.messagesOf(away.before).length > 0, 10_000, { message: `${awayUser}#away got a first message` });
    const watched = ['api', 'worker', 'gateway-1', 'gateway-2'];
    const watcher = watchReadyz(watched.map((name) => ({ name, url: s.d.process(name).healthUrl })));
    await waitFor(watcher.answered, 10_000, { message: 'a first /readyz answer of every watched process' });

    const offset = away.leave();
    assert.ok(offset, `${awayUser}#away saw an offset before leaving`);
    s.mark(`${awayUser}#away leaves at offset ${offset} holding ${away.held.length} messages`);
    s.mark(`redis master ${victim} kill -9`);
    const killAt = Date.now();
    s.downAt = killAt;
    await cluster.kill(victimPort);
    const promoted = await cluster.waitFailover(victimPort);
    const promotedAt = Date.now();
    s.upAt = promotedAt;
    s.mark(`promoted ${promoted}, ${promotedAt - killAt} ms after the kill`);
    assert.notEqual(promoted, victim, 'another node serves the slots');

    // Live delivery back: every connected socket gets a message event after the promotion.
    await eventually(() => s.clients.every((c) => c.liveTimes.some((t) => t >= promotedAt)), LIVE_WITHIN_MS + 5000, 20);
    s.mark('live delivery back on every socket');

    // The away device resumes with its offset.
    away.after = await d.connect(0, s.accounts[awayUser].accessToken, { label: `${awayUser}#back`, auth: { offset } });
    const recovered = (await waitForEvent(away.after, (e) => e.event === RECOVERED, 10_000, RECOVERED)).payload;
    s.mark(`${awayUser}#back: ${RECOVERED} ${JSON.stringify(recovered)}`);

    // The killed node comes back as a replica of the promoted one.
    await cluster.restart(victimPort);
    const role = await cluster.role(victimPort);
    assert.deepEqual({ role: role.role, master: role.master }, { role: 'slave', master: promoted }, `${victim} rejoined as a replica of ${promoted}`);
    s.mark(`${victim} rejoined as a replica of ${promoted}`);
    const { firstLive, worst } = await s.afterFailover(watcher, 'cluster', killAt, promotedAt);
    const report = await s.report();

    // The away device: recovered:true only with every event it missed, none twice.
    const rows = await s.rows();
    const want = rows.filter((r) => awayChats.includes(r.chatId));
    const heldKeys = new Set(away.held.map((m) => `${m.chatId}:${m.sequence}`));
    const complete = () => {
      const got = new Set([...heldKeys, ...AwayDevice.messagesOf(away.after).map((m) => `${m.chatId}:${m.sequence}`)]);
      return want.every((r) => got.has(`${r.chatId}:${r.sequence}`));
    };
    if (recovered.recovered === true) await eventually(complete, 5000, 50);
    const back = AwayDevice.messagesOf(away.after);
    const twice = back.filter((m) => heldKeys.has(`${m.chatId}:${m.sequence}`))
      .concat(back.filter((m, i) => back.findIndex((x) => x.id === m.id) !== i));
    process.stdout.write(`cluster-away-device: user ${awayUser} (keys on ${victim}) offset ${offset} -> ${JSON.stringify(recovered)}; `
      + `held ${away.held.length}, replayed+live ${back.length}, complete=${complete()}\n`);
    if (recovered.recovered === true) {
      const missing = want.filter((r) => !heldKeys.has(`${r.chatId}:${r.sequence}`)
        && !back.some((m) => m.chatId === r.chatId && m.sequence === r.sequence));
      assert.deepEqual(missing.map((r) => `${s.chatTitle(r.chatId)}#${r.sequence}`), [],
        `${awayUser}#back got recovered:true from ${offset}: every event it missed must follow (no hole)`);
    } else {
      assert.equal(recovered.recovered, false, `${RECOVERED} says true or false: ${JSON.stringify(recovered)}`);
    }
    assert.deepEqual(twice.map((m) => `${s.chatTitle(m.chatId)}#${m.sequence}`), [], `${awayUser}: no message twice on the device`);

    s.assertReport(report, { dlq: 0, liveWithinMs: LIVE_WITHIN_MS });
    assert.equal(report.status503, 0, 'sends are answered while a Redis master is lost: PostgreSQL has the membership');
    assert.equal(report.networkErrors, 0, 'no send failed at the network level');
    assertReadyzNamed(s, watched, 'redis');
    assert.ok(worst <= LIVE_WITHIN_MS, `live delivery back within ${LIVE_WITHIN_MS} ms of the promotion on every socket: ${JSON.stringify(firstLive)}`);
  } finally {
    s.close();
    away?.after?.close();
  }
});
