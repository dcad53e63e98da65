// Fault: a restart of PostgreSQL (pg_ctl stop -m fast, start) mid-stream, on a cluster of
// this test's own. The worker holds its deliveries while the database is away and resumes:
// nothing is dead-lettered, lost or stored twice; sequences stay gap-free; /readyz names
// postgresql meanwhile (/readyz needs ~3 s, the pool's acquire timeout, to say so).
// Redis pub/sub is untouched, so every message also arrives live.

import { assertReadyzNamed, outage, setupScenario, useFaultDeployment } from './fault.mjs';

const { d, instance } = useFaultDeployment({ instance: 'postgres', workers: 1, gateways: 2 });

d.test('PostgreSQL restarted mid-stream: the worker holds and resumes; nothing lost, doubled or dead-lettered', { timeout: 150_000 }, async () => {
  // Two busy groups: cal, eve and fay write only to g2 (~75 msg/s), ana only to g1
  // (~25 msg/s); cal and dee are in both. While the database is away the API still
  // accepts (membership comes from the Redis cache), so a few hundred messages pile up and
  // the worker's catch-up is a burst of hundreds of events for each member's socket.
  const s = await setupScenario(d, 'postgres-restart', {
    senderChats: { ana: ['g1'], cal: ['g2'], eve: ['g2'], fay: ['g2'] },
  });
  try {
    s.stream({ perSender: 175, rate: 25 });
    await s.acceptedAtLeast(100);
    // Down for at least 4 s (/readyz needs ~3 s to report it), and until 300 g2 messages
    // were accepted meanwhile (about 4 s at full speed; at most 15 s on a slow machine).
    const g2 = s.chats.find((c) => c.title === 'g2').id;
    const g2Accepted = () => s.ledger.all.filter((r) => r.accepted && r.chatId === g2).length;
    const before = g2Accepted();
    await outage(s, instance(), {
      downMs: 4000,
      until: () => g2Accepted() - before >= 300 || s.streamDone,
      maxDownMs: 15_000,
      watch: ['api', 'worker', 'gateway-1', 'gateway-2'],
    });
    await s.settle();
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true });
    assertReadyzNamed(s, ['api', 'worker', 'gateway-1', 'gateway-2'], 'postgresql');
  } finally {
    s.close();
  }
});
