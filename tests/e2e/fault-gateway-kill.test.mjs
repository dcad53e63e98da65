// Fault: `kill -9` of a gateway holding clients mid-stream. Its clients reconnect to the
// other gateway and `chat.sync`; they end with every message, none twice as
// chat.message.new on one socket; the dead gateway's routing state is reaped from Redis
// by the survivor once its lease runs out (heartbeat 5 s, lease 15 s).

import assert from 'node:assert/strict';

import { eventually, gatewayRoutingState, setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('kill -9 of a gateway with clients: they fail over, chat.sync, and its sockets are reaped', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'gateway-kill');
  const victims = s.clients.filter((c) => c.gateway === 0);
  const gw1 = `${d.id}-gw1`;
  try {
    assert.ok(victims.length >= 3, 'clients on gateway 1');
    assert.ok((await gatewayRoutingState(d, gw1, [])).registered, 'gateway 1 is registered in Redis');
    s.stream();
    await s.acceptedAtLeast(120);
    s.mark('kill -9 gateway-1');
    const killedAt = Date.now();
    const exit = await d.process('gateway-1').kill('SIGKILL');
    assert.equal(exit?.signal, 'SIGKILL');
    await s.settle();

    for (const c of victims) {
      const last = c.current;
      assert.ok(c.connected, `${c.label} is connected again`);
      assert.equal(last.gateway, 1, `${c.label} landed on gateway 2`);
      assert.ok(c.reconnects.length >= 1, `${c.label} reconnected`);
      assert.ok(c.sessions[0].disconnect, `${c.label} saw its first socket drop`);
    }
    const report = await s.report();
    s.assertReport(report, { dlq: 0 });

    // The survivor reaps the dead gateway within lease + heartbeat (+ slack).
    const userIds = Object.values(s.accounts).map((a) => a.user.id);
    const reaped = await eventually(async () => {
      const st = await gatewayRoutingState(d, gw1, userIds);
      return !st.registered && st.sockets === 0 && st.userEntries === 0 && st;
    }, Math.max(1000, killedAt + 25_000 - Date.now()), 500);
    const state = await gatewayRoutingState(d, gw1, userIds);
    s.mark(`reap check after ${Date.now() - killedAt} ms: ${JSON.stringify(state)}`);
    assert.ok(reaped, `gateway 1's routing state still in Redis ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(state)}`);
  } finally {
    s.close();
  }
});
