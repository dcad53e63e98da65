// SDK end to end (issue 29): tokens that expire during a long session. Access tokens live
// JWT_EXPIRATION_TIME = 64 s, so the gateway sends `auth.expiring` (60 s ahead) about 4 s
// after each one is issued. Alice's getToken() trades her refresh token at POST
// /auth/refresh like an app would (single use: a second concurrent refresh would reuse a
// spent token, which revokes the whole session). Through five token lifetimes' warnings,
// alice and bob keep talking; alice's SDK refreshes once per warning, never two at once,
// keeps its socket (auth.refresh, no reconnect), and both stores equal history.

import assert from 'node:assert/strict';

import { createUsers } from './fault-scenario.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import {
  assertStoresEqualHistory, connectAll, converse, eventsOf, sdkClient,
} from './sdk-helpers.mjs';

const TTL_SECS = 64;
const d = useDeployment({ mode: 'split', gateways: 1, env: { JWT_EXPIRATION_TIME: String(TTL_SECS) } });

/**
 * getToken() over POST /auth/refresh with the account's rotating refresh token; records
 * each call ({start, end, expiresIn}), the most calls in flight at once, and failures.
 */
function refreshingTokens(account) {
  let refreshToken = account.refreshToken;
  const rec = { calls: [], inFlight: 0, maxInFlight: 0, failures: [] };
  rec.getToken = async () => {
    rec.inFlight += 1;
    rec.maxInFlight = Math.max(rec.maxInFlight, rec.inFlight);
    const call = { start: Date.now(), end: null };
    rec.calls.push(call);
    try {
      const res = await d.api('POST', '/auth/refresh', { body: { refreshToken } });
      if (res.status !== 200) {
        rec.failures.push(`${res.status} ${JSON.stringify(res.body)}`);
        throw new Error(`refresh: ${res.status}`);
      }
      refreshToken = res.body.refreshToken;
      call.expiresIn = res.body.expiresIn;
      return res.body.accessToken;
    } finally {
      call.end = Date.now();
      rec.inFlight -= 1;
    }
  };
  return rec;
}

d.test('tokens expiring through a long session: one refresh per warning, single flight, nothing lost', { timeout: 90_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob']); // alice registered (a real session), bob cloned
  assert.ok(acc.alice.refreshToken, 'alice has a refresh token');
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);

  const tokens = refreshingTokens(acc.alice);
  const alice = sdkClient(d, acc.alice, { label: 'alice', getToken: tokens.getToken });
  const bob = sdkClient(d, acc.bob, { label: 'bob' });
  await connectAll(t, [alice, bob]);
  const connectedAt = Date.now();
  const callsAtConnect = tokens.calls.length;
  assert.ok(callsAtConnect >= 1, 'getToken() was called to connect');

  // Talk until five more tokens were fetched: five warnings, each ~4 s after the last refresh.
  const refreshes = () => tokens.calls.length - callsAtConnect;
  const talk = converse([{ client: alice, chatId: dm.id }, { client: bob, chatId: dm.id }],
    { count: 400, window: 3, paceMs: 150, until: () => refreshes() >= 5 || tokens.failures.length > 0 });
  await waitFor(() => refreshes() >= 5 || tokens.failures.length > 0, 60_000, { intervalMs: 50,
    message: () => `five refreshes during the session (${refreshes()}; alice got ${eventsOf(alice, 'auth.expiring').length} auth.expiring)` });
  await talk;
  // REST through the SDK with the latest token.
  const page = await alice.client.loadHistory(dm.id);
  assert.ok(Array.isArray(page.messages), 'loadHistory after the refreshes');

  assert.deepEqual(tokens.failures, [], 'every refresh succeeded (no spent refresh token reused)');
  assert.equal(tokens.maxInFlight, 1, 'getToken() single flight: never two calls at once');
  // One refresh per warning: consecutive calls at least ~the warning period apart.
  const gaps = tokens.calls.slice(callsAtConnect).map((c, i, all) => (i === 0 ? null : c.start - all[i - 1].end)).slice(1);
  const minGap = (TTL_SECS - 60) * 1000 / 2;
  assert.ok(gaps.every((g) => g >= minGap), `refreshes closer than ${minGap} ms apart (a duplicate refresh): ${gaps.join(', ')} ms`);

  // The socket lived through it all: no reconnect, no revocation.
  assert.deepEqual(alice.states.filter((s) => s.at > connectedAt && s.state !== 'connected').map((s) => s.state), [],
    'alice stayed connected (refreshed in place with auth.refresh)');
  assert.equal(alice.recovered.filter((r) => r.at > connectedAt).length, 0, 'no reconnect');
  assert.equal(eventsOf(alice, 'auth.revoked').length, 0, 'no auth.revoked');
  assert.ok(Date.now() - connectedAt > 5 * (TTL_SECS - 60) * 1000, 'the session outlived five warning periods');

  await assertStoresEqualHistory(d, acc.bob.accessToken, [alice, bob], [dm.id]);
  process.stderr.write(`[sdk-token] ${tokens.calls.length} getToken() calls over ${Date.now() - connectedAt} ms, `
    + `${alice.sent.length + bob.sent.length} messages\n`);
});
