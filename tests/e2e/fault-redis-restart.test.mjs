// Fault: a restart of Redis (SHUTDOWN NOSAVE: every key is lost) mid-stream, on a Redis
// instance of this test's own. While Redis is away the API answers 503 (senders retry
// with the same clientMessageId), the worker holds its deliveries, /readyz names redis;
// afterwards the gateways re-register their sockets and clients recover with chat.sync.

import assert from 'node:assert/strict';

import { assertReadyzNamed, outage, setupScenario, useFaultDeployment } from './fault.mjs';

const { d, instance } = useFaultDeployment({ instance: 'redis', workers: 1, gateways: 2 });

d.test('Redis restarted mid-stream: nothing lost, doubled or dead-lettered; clients recover', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'redis-restart');
  try {
    s.stream();
    await s.acceptedAtLeast(100);
    await outage(s, instance(), { watch: ['api', 'worker', 'gateway-1', 'gateway-2'] });
    await s.settle();
    // Informational: how long live delivery stayed dark after Redis was back (the routing
    // state is rebuilt only at each gateway's next heartbeat; see the report's liveMissed).
    s.mark(`first live event after redis up, ms per socket: ${JSON.stringify(s.liveResumedAfter(s.upAt))}`);
    const report = await s.report();
    s.assertReport(report, { dlq: 0 });
    assert.ok(report.status503 + report.networkErrors > 0, 'the senders never noticed the outage (no 503)');
    assertReadyzNamed(s, ['api', 'worker', 'gateway-1', 'gateway-2'], 'redis');
  } finally {
    s.close();
  }
});
