// The all-in-one `courier` binary: REST and Socket.IO on the same PORT.

import assert from 'node:assert/strict';

import { directRoundTrip, useDeployment } from './harness.mjs';

const d = useDeployment({ mode: 'all-in-one' });

d.test('REST, Socket.IO and the probes share one port', async () => {
  assert.equal(d.gateway(0), d.apiUrl);
  for (const probe of ['/healthz', '/readyz']) {
    const res = await d.api('GET', probe);
    assert.equal(res.status, 200, `${probe}: ${res.status} ${JSON.stringify(res.body)}`);
  }
});

d.test('direct chat round trip over WebSocket', () =>
  directRoundTrip(d, { transports: ['websocket'] }));

d.test('direct chat round trip over polling, upgraded to WebSocket', () =>
  directRoundTrip(d, { transports: ['polling', 'websocket'] }));
