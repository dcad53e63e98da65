// Fault: `kill -9` of the active worker mid-stream while a second worker stands by.
// The partitions' single active consumer moves to the survivor, which gets the dead
// worker's unacked deliveries again: nothing is lost, nothing is stored twice, sequences
// stay gap-free, and every recipient gets each message live exactly once per socket.

import assert from 'node:assert/strict';

import { partitionConsumers, setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('kill -9 of the active worker mid-stream: the standby takes over, nothing lost or doubled', { timeout: 150_000 }, async () => {
  // `worker` starts first and so holds every partition; `worker-2` waits as standby.
  const standby = await d.addWorker();
  await partitionConsumers(d, 2); // the standby waits on every partition
  const s = await setupScenario(d, 'worker-kill');
  try {
    s.stream();
    await s.acceptedAtLeast(120);
    s.mark('kill -9 worker');
    const exit = await d.process('worker').kill('SIGKILL');
    assert.equal(exit?.signal, 'SIGKILL', 'the worker was killed');
    await s.settle();
    assert.ok(standby.running, 'the standby worker still runs');
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true });
  } finally {
    s.close();
  }
});
