// Fault: kill -9 of the Redis master under load, on a Sentinel set of this test's own
// (scripts/redis-sentinel.sh: a master, a replica, three sentinels; down-after 1 s).
// Courier finds the master through the sentinels and finds it again when it is lost
// (+switch-master, or a command failing on the dead connection). While no master
// answers, the API keeps accepting sends (PostgreSQL has the membership, rate limits
// fail open: not one 503) and the worker holds its deliveries. The promotion starts a
// new Redis epoch: connected clients get session.recovered {recovered: false} and
// re-sync (chat.sync), so no message is lost even if the promoted replica lacked the
// master's last writes. Must show 0 lost, 0 duplicated, 0 gaps, no refused send, and
// live delivery back within COURIER_FAULT_SENTINEL_LIVE_MS (5 s) of the promotion.
// /readyz names redis while no master answers. Prints the dark window: kill ->
// promotion -> first live event.

import assert from 'node:assert/strict';

import {
  assertReadyzNamed, setupScenario, useFaultDeployment, watchReadyz,
} from './fault.mjs';
import { waitFor } from './harness.mjs';
import { startSentinelSet } from './instances-redis-sentinel.mjs';

const LIVE_WITHIN_MS = Number(process.env.COURIER_FAULT_SENTINEL_LIVE_MS ?? 5000);

let deployment = null;
const { d, instance } = useFaultDeployment({
  workers: 1,
  gateways: 2,
  instance: async () => {
    const set = await startSentinelSet();
    Object.assign(deployment.extraEnv, set.courierEnv);
    return set;
  },
});
deployment = d;

d.test('Redis Sentinel: kill -9 of the master under load; nothing lost, doubled or refused; live again within 5 s of the promotion', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'redis-sentinel', { recovery: 'sync' });
  const set = instance();
  try {
    s.stream();
    await s.acceptedAtLeast(100);
    const watched = ['api', 'worker', 'gateway-1', 'gateway-2'];
    const watcher = watchReadyz(watched.map((name) => ({ name, url: s.d.process(name).healthUrl })));
    await waitFor(watcher.answered, 10_000, { message: 'a first /readyz answer of every watched process' });
    const old = await set.master();
    s.mark(`redis master ${old} kill -9`);
    const killAt = Date.now();
    s.downAt = killAt;
    await set.kill(Number(old.split(':')[1]));
    const now = await set.waitFailover(old);
    const promotedAt = Date.now();
    s.upAt = promotedAt;
    s.mark(`sentinels promoted ${now}, ${promotedAt - killAt} ms after the kill`);
    await set.restart(Number(old.split(':')[1])); // it rejoins as a replica
    const { firstLive, worst } = await s.afterFailover(watcher, 'sentinel', killAt, promotedAt);
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveWithinMs: LIVE_WITHIN_MS });
    assert.equal(report.status503, 0, 'sends are answered while no Redis master answers: PostgreSQL has the membership');
    assert.equal(report.networkErrors, 0, 'no send failed at the network level');
    assertReadyzNamed(s, watched, 'redis');
    assert.ok(worst <= LIVE_WITHIN_MS, `live delivery back within ${LIVE_WITHIN_MS} ms of the promotion on every socket: ${JSON.stringify(firstLive)}`);
  } finally {
    s.close();
    await set.follow(d).catch(() => { /* no master: the set goes anyway */ });
  }
});
