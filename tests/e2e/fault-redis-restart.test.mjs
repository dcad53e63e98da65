// Fault: a restart of Redis (SHUTDOWN NOSAVE: every key is lost, the per-user event streams
// included) mid-stream, on a Redis instance of this test's own. While Redis is away the API
// keeps accepting sends (membership from PostgreSQL, rate limits fail open: not one 503),
// the worker holds its deliveries, /readyz names redis. Once Redis is back the gateways resubscribe, rebuild
// their routing state and read back what their connections missed, so the connected
// clients need nothing of their own: they run with recovery 'offset' (never chat.sync;
// auth.offset if a socket drops) and must end with every accepted message, live, none
// twice on a device, each within COURIER_FAULT_LIVE_WITHIN_MS (2 s, the bound the design promises) of
// max(accepted, Redis up).

import assert from 'node:assert/strict';

import { assertReadyzNamed, faultSettings, outage, setupScenario, useFaultDeployment } from './fault.mjs';

const { d, instance } = useFaultDeployment({ instance: 'redis', workers: 1, gateways: 2 });

d.test('Redis restarted mid-stream: nothing lost, doubled or dead-lettered; live delivery alone is complete', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'redis-restart', { recovery: 'offset' });
  try {
    s.stream();
    await s.acceptedAtLeast(100);
    await outage(s, instance(), { watch: ['api', 'worker', 'gateway-1', 'gateway-2'] });
    await s.settle();
    s.mark(`first live event after redis up, ms per socket: ${JSON.stringify(s.liveResumedAfter(s.upAt))}`);
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true, noSync: true, liveWithinMs: faultSettings.liveWithinMs });
    assert.equal(report.status503, 0, 'sends are answered while Redis is away: PostgreSQL has the membership');
    assert.equal(report.networkErrors, 0, 'no send failed at the network level');
    assertReadyzNamed(s, ['api', 'worker', 'gateway-1', 'gateway-2'], 'redis');
  } finally {
    s.close();
  }
});
