// Fault: graceful SIGTERM of the active worker mid-stream while a second worker stands by.
// The stopping worker finishes or returns its deliveries and exits 0 in time; the other
// worker continues: no loss, no duplicate, gap-free sequences, live delivery complete.

import assert from 'node:assert/strict';

import { partitionConsumers, setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('SIGTERM of the active worker mid-stream: it exits cleanly, the other worker continues', { timeout: 150_000 }, async () => {
  const standby = await d.addWorker();
  await partitionConsumers(d, 2); // the standby waits on every partition
  const s = await setupScenario(d, 'worker-sigterm');
  try {
    s.stream();
    await s.acceptedAtLeast(120);
    s.mark('SIGTERM worker');
    const started = Date.now();
    const exit = await d.process('worker').kill('SIGTERM', 20_000);
    s.mark(`worker exited ${JSON.stringify(exit)} after ${Date.now() - started} ms`);
    assert.ok(exit, 'the worker did not exit within 20 s of SIGTERM');
    assert.equal(exit.code, 0, `worker exit after SIGTERM: ${JSON.stringify(exit)}`);
    await s.settle();
    assert.ok(standby.running, 'the other worker still runs');
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true });
  } finally {
    s.close();
  }
});
