// Fault: a restart of RabbitMQ (stop_app / start_app: every client connection is closed)
// mid-stream, on a RabbitMQ node of this test's own. While the broker is away the API
// answers 503 + Retry-After and never 202 for an unconfirmed message; senders retry with the
// same clientMessageId; the worker reconnects and the durable quorum partitions keep what
// was confirmed: every 202 is persisted exactly once, in order, gap-free.

import assert from 'node:assert/strict';

import { assertReadyzNamed, outage, setupScenario, useFaultDeployment } from './fault.mjs';

const { d, instance } = useFaultDeployment({ instance: 'rabbitmq', workers: 1, gateways: 2 });

d.test('RabbitMQ restarted mid-stream: 503 while away, then every 202 persisted exactly once', { timeout: 180_000 }, async () => {
  const s = await setupScenario(d, 'rabbitmq-restart');
  try {
    s.stream();
    await s.acceptedAtLeast(100);
    await outage(s, instance(), { watch: ['api', 'worker'] });
    await s.settle();
    const report = await s.report();
    s.assertReport(report, { dlq: 0 });
    assert.ok(report.status503 > 0, 'the senders never got a 503 while the broker was away');
    assertReadyzNamed(s, ['api', 'worker'], 'rabbitmq');
  } finally {
    s.close();
  }
});
