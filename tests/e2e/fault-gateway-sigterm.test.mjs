// Fault: graceful SIGTERM of a gateway holding clients mid-stream. The gateway tells its
// clients to reconnect (a disconnect a stock socket.io-client reconnects on, not a
// namespace-level "io server disconnect"), removes its routing state from Redis and exits 0;
// the clients land on the other gateway and `chat.sync`, ending with every message once.

import assert from 'node:assert/strict';

import { eventually, gatewayRoutingState, setupScenario, useFaultDeployment } from './fault.mjs';

const { d } = useFaultDeployment({ workers: 1, gateways: 2 });

d.test('SIGTERM of a gateway with clients: told to reconnect, they land on the other gateway and chat.sync', { timeout: 150_000 }, async () => {
  const s = await setupScenario(d, 'gateway-sigterm');
  const victims = s.clients.filter((c) => c.gateway === 0);
  const gw1 = `${d.id}-gw1`;
  const userIds = Object.values(s.accounts).map((a) => a.user.id);
  try {
    assert.ok(victims.length >= 3, 'clients on gateway 1');
    s.stream();
    await s.acceptedAtLeast(120);
    s.mark('SIGTERM gateway-1');
    const started = Date.now();
    const exit = await d.process('gateway-1').kill('SIGTERM', 20_000);
    s.mark(`gateway-1 exited ${JSON.stringify(exit)} after ${Date.now() - started} ms`);
    assert.ok(exit, 'gateway-1 did not exit within 20 s of SIGTERM');
    assert.equal(exit.code, 0, `gateway exit after SIGTERM: ${JSON.stringify(exit)}`);

    // A graceful stop removes its routing state at once (no lease wait).
    const gone = await eventually(async () => {
      const st = await gatewayRoutingState(d, gw1, userIds);
      return !st.registered && st.sockets === 0 && st.userEntries === 0;
    }, 3000, 200);
    const state = await gatewayRoutingState(d, gw1, userIds);
    await s.settle();

    const reasons = victims.map((c) => `${c.label}: ${c.sessions[0].disconnect?.reason}`);
    s.mark(`disconnect reasons ${JSON.stringify(reasons)}`);
    const report = await s.report();
    for (const c of victims) {
      assert.ok(c.connected, `${c.label} is connected again`);
      assert.equal(c.current.gateway, 1, `${c.label} landed on gateway 2`);
      assert.ok(c.reconnects.length >= 1, `${c.label} reconnected`);
    }
    s.assertReport(report, { dlq: 0 });
    assert.ok(gone, `gateway 1's routing state still in Redis after its graceful exit: ${JSON.stringify(state)}`);
    // "io server disconnect" / "io client disconnect" are the reasons on which socket.io-client
    // does NOT reconnect by itself: a browser client would stay offline.
    const stranded = victims.filter((c) => ['io server disconnect', 'io client disconnect'].includes(c.sessions[0].disconnect?.reason));
    assert.equal(stranded.length, 0, `clients were disconnected in a way socket.io-client does not reconnect from: ${reasons.join(', ')}`);
  } finally {
    s.close();
  }
});
