// Fault: `kill -9` of a gateway holding clients mid-stream, with clients that recover only
// through the contract's offsets (recovery 'offset'): they reconnect to the other gateway
// with auth.offset = the last offset they saw and never call chat.sync. What the dead
// gateway never delivered must come back in the replay before session.recovered
// {recovered: true}: every message on every device, none twice on a device.

import assert from 'node:assert/strict';

import { setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('kill -9 of a gateway: clients resume on the other one with auth.offset alone; nothing missed or doubled', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'gateway-kill-offset', { recovery: 'offset' });
  const victims = s.clients.filter((c) => c.gateway === 0);
  try {
    assert.ok(victims.length >= 3, 'clients on gateway 1');
    s.stream();
    await s.acceptedAtLeast(120);
    s.mark('kill -9 gateway-1');
    await d.process('gateway-1').kill('SIGKILL');
    await s.settle();
    for (const c of victims) {
      assert.ok(c.connected, `${c.label} is connected again`);
      assert.equal(c.current.gateway, 1, `${c.label} landed on gateway 2`);
      assert.ok(c.current.offsetGiven, `${c.label} reconnected with an offset`);
      assert.equal(c.current.recovered?.recovered, true, `${c.label}: session.recovered ${JSON.stringify(c.current.recovered)}`);
    }
    s.mark(`replayed per victim: ${JSON.stringify(Object.fromEntries(victims.map((c) => [c.label, c.current.replayed])))}`);
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true, noSync: true });
  } finally {
    s.close();
  }
});
