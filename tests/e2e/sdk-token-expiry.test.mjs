// SDK end to end (issue 29): tokens that expire during a long session, two ways.
// - Alice's access tokens come from POST /auth/refresh with JWT_EXPIRATION_TIME = 64 s, so
//   the gateway sends `auth.expiring` (60 s ahead) 3-4 s after each is issued. Her
//   getToken() trades her refresh token like an app would; refresh tokens are single use,
//   so two concurrent refreshes would reuse a spent one, which revokes the whole session.
// - Bob's getToken() hands out tokens that live 8 s: each expires for real during the
//   session (the gateway drops a socket 5 s after its token's expiry unless `auth.refresh`
//   moved it; `auth.expiring` comes at once for such a token).
// Both keep talking through many expiries; each SDK refreshes in place (no reconnect),
// never two refreshes at once, not back to back, and both stores equal history.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { createUsers } from './fault-scenario.mjs';
import { accessClaims, craftJwt, useDeployment, waitFor } from './harness.mjs';
import {
  assertStoresEqualHistory, connectAll, converse, eventsOf, sdkClient,
} from './sdk-helpers.mjs';

const ALICE_TTL_SECS = 64;
const BOB_TTL_SECS = 8;
const d = useDeployment({ mode: 'split', gateways: 1, env: { JWT_EXPIRATION_TIME: String(ALICE_TTL_SECS) } });

/**
 * A getToken() around `fetchToken` that records each call ({start, end}), the most calls
 * in flight at once, and failures.
 */
function countedTokens(fetchToken) {
  const rec = { calls: [], inFlight: 0, maxInFlight: 0, failures: [] };
  rec.getToken = async () => {
    rec.inFlight += 1;
    rec.maxInFlight = Math.max(rec.maxInFlight, rec.inFlight);
    const call = { start: Date.now(), end: null };
    rec.calls.push(call);
    try {
      return await fetchToken();
    } catch (err) {
      rec.failures.push(err.message);
      throw err;
    } finally {
      call.end = Date.now();
      rec.inFlight -= 1;
    }
  };
  /** Calls started after `t` (ms since epoch). */
  rec.since = (t) => rec.calls.filter((c) => c.start > t);
  return rec;
}

/** Alice's: POST /auth/refresh with her rotating refresh token. */
function refreshTokens(account) {
  let refreshToken = account.refreshToken;
  return countedTokens(async () => {
    const res = await d.api('POST', '/auth/refresh', { body: { refreshToken } });
    if (res.status !== 200) throw new Error(`refresh: ${res.status} ${JSON.stringify(res.body)}`);
    refreshToken = res.body.refreshToken;
    return res.body.accessToken;
  });
}

/** Asserts that `c` kept its socket and refreshed single flight, not back to back. */
function assertRefreshedInPlace(c, tokens, since, { minCalls, maxCalls }) {
  const calls = tokens.since(since);
  const summary = `getToken() calls at ${tokens.calls.map((x) => x.start - since).join(', ')} ms after connect; `
    + `${eventsOf(c, 'auth.expiring').length} auth.expiring; states ${JSON.stringify(c.states.map((s) => [s.state, s.reason, s.at - since]))}`;
  assert.deepEqual(tokens.failures, [], `${c.label}: every getToken() succeeded (no spent refresh token reused)`);
  assert.equal(tokens.maxInFlight, 1, `${c.label}: getToken() single flight: ${summary}`);
  assert.deepEqual(c.states.filter((s) => s.at > since && s.state !== 'connected').map((s) => `${s.state} (${s.reason})`), [],
    `${c.label} stayed connected, refreshed in place with auth.refresh: ${summary}`);
  assert.equal(c.recovered.filter((r) => r.at > since).length, 0, `${c.label}: no reconnect`);
  assert.equal(eventsOf(c, 'auth.revoked').length, 0, `${c.label}: no auth.revoked`);
  assert.ok(calls.length >= minCalls, `${c.label}: at least ${minCalls} refreshes: ${summary}`);
  assert.ok(calls.length <= maxCalls, `${c.label}: at most ${maxCalls} refreshes (no refresh storm): ${summary}`);
}

d.test('tokens expiring through a long session: refreshed in place, single flight, nothing lost', { timeout: 90_000 }, async (t) => {
  const acc = await createUsers(d, ['alice', 'bob']); // alice registered (a real session), bob cloned
  assert.ok(acc.alice.refreshToken, 'alice has a refresh token');
  const dm = await d.createDirect(acc.alice.accessToken, acc.bob.user.id);

  const aliceTokens = refreshTokens(acc.alice);
  const bobTokens = countedTokens(async () => craftJwt({ ...accessClaims(acc.bob.user.id, BOB_TTL_SECS), jti: randomUUID() },
    d.jwtSecret));
  const alice = sdkClient(d, acc.alice, { label: 'alice', getToken: aliceTokens.getToken });
  const bob = sdkClient(d, acc.bob, { label: 'bob', getToken: bobTokens.getToken });
  await connectAll(t, [alice, bob]);
  const connectedAt = Date.now();

  // Talk until alice fetched five more tokens (five warnings) and bob's session outlived
  // three of his tokens.
  const enough = () => aliceTokens.since(connectedAt).length >= 5
    && Date.now() - connectedAt > 3 * BOB_TTL_SECS * 1000;
  const broken = () => aliceTokens.failures.length + bobTokens.failures.length > 0
    || [alice, bob].some((c) => c.client.state !== 'connected');
  const talk = converse([{ client: alice, chatId: dm.id }, { client: bob, chatId: dm.id }],
    { count: 1000, window: 3, paceMs: 150, until: () => enough() || broken() });
  await waitFor(() => enough() || broken(), 60_000, { intervalMs: 50,
    message: () => `five refreshes of alice (${aliceTokens.since(connectedAt).length}) and ${3 * BOB_TTL_SECS} s` });
  await talk;
  // REST through the SDK with the latest tokens.
  for (const c of [alice, bob]) assert.ok(Array.isArray((await c.client.loadHistory(dm.id)).messages), `${c.label}: loadHistory`);
  const elapsed = Date.now() - connectedAt;

  // Bob: at least one refresh per token lifetime (his tokens expire for real); at most one
  // per quarter lifetime.
  assertRefreshedInPlace(bob, bobTokens, connectedAt, {
    minCalls: Math.floor(elapsed / (BOB_TTL_SECS * 1000)),
    maxCalls: Math.ceil(elapsed / (BOB_TTL_SECS * 250)) + 1,
  });
  // Alice: one refresh per warning, 3-4 s apart: at most one per 1.5 s.
  assertRefreshedInPlace(alice, aliceTokens, connectedAt, { minCalls: 5, maxCalls: Math.ceil(elapsed / 1500) + 1 });

  await assertStoresEqualHistory(d, craftJwt(accessClaims(acc.bob.user.id, 600), d.jwtSecret), [alice, bob], [dm.id]);
  process.stderr.write(`[sdk-token] over ${elapsed} ms: alice ${aliceTokens.calls.length} getToken() calls (64 s tokens), `
    + `bob ${bobTokens.calls.length} (8 s tokens); ${alice.sent.length + bob.sent.length} messages\n`);
});
