// Fault: every message of two senders is POSTed concurrently from two devices of the
// sender (two HTTP connections, two sockets), with the same clientMessageId, sometimes a
// few ms apart. Both requests answer 202; the message is persisted once, takes one
// sequence, reaches every recipient socket once as chat.message.new, and each of the
// sender's sockets learns of it (chat.message.saved).

import assert from 'node:assert/strict';

import { setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('the same clientMessageId sent concurrently from two connections is stored and delivered once', { timeout: 150_000 }, async () => {
  const twoDevices = { devices: 2, duplicateAcrossDevices: true };
  const s = await setupScenario(d, 'duplicate-concurrent', {
    senderOptions: { ana: twoDevices, eve: twoDevices },
    extraClients: [{ user: 'ana', gateway: 1 }, { user: 'eve', gateway: 0 }],
  });
  try {
    s.stream();
    await s.settle();
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true });
    const doubled = s.ledger.all.filter((r) => r.posts === 2);
    assert.ok(doubled.length >= 150, `only ${doubled.length} messages were posted twice`);
    const once = doubled.filter((r) => r.acceptedBy.size !== 2);
    assert.equal(once.length, 0, `${once.length} of the concurrent duplicates did not get a 202 on both connections: `
      + once.slice(0, 3).map((r) => `"${r.content}" 503 x${r.n503} network errors x${r.netErrors} ${r.unexpected.join(' ')}`).join('; '));
  } finally {
    s.close();
  }
});
