// Socket.IO handshake authentication: where the token may travel, which
// tokens are refused (with connect_error "unauthorized"), and that refusals
// leave the gateway serving.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { EVENTS } from './contract.mjs';
import { accessClaims, craftJwt, useDeployment, waitFor } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 1 });

const TRANSPORTS = { websocket: ['websocket'], polling: ['polling'] };
const PLACEMENTS = ['auth', 'header', 'query'];

/** Alice (whose sockets are under test), Bob (who messages her) and their chat. */
const people = d.shared(async () => {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const chat = await d.createDirect(bob.accessToken, alice.user.id);
  return { alice, bob, chat };
});

/**
 * Connects with `token` and `options` and proves the socket is Alice's: a
 * message Bob sends reaches it as `chat.message.new`.
 */
async function expectAcceptedAsAlice(token, options) {
  const { bob, chat } = await people();
  const client = await d.connect(0, token, { label: 'alice', ...options });
  const sent = await d.send(bob.accessToken, chat.id, `are you there? ${randomBytes(3).toString('hex')}`);
  await waitFor(() => client.count(EVENTS.NEW, { clientMessageId: sent.clientMessageId }) === 1, 10_000,
    { message: `alice's socket did not get bob's message (${JSON.stringify(options)})` });
  client.close();
}

/** Connecting must fail with connect_error whose message is exactly "unauthorized". */
async function expectRefused(token, options) {
  await assert.rejects(d.connect(0, token, { label: 'refused', ...options }), (err) => {
    assert.equal(err.message, 'unauthorized', `connect_error message for ${JSON.stringify(options)}`);
    return true;
  });
}

// --- accepted -----------------------------------------------------------------

for (const via of PLACEMENTS) {
  for (const [name, transports] of Object.entries(TRANSPORTS)) {
    d.test(`a valid token via ${via} over ${name} is accepted`, async () => {
      const { alice } = await people();
      await expectAcceptedAsAlice(alice.accessToken, { via, transports });
    });
  }
}

d.test('a token crafted with the deployment secret and only sub/iss/exp is accepted', async () => {
  const { alice } = await people();
  await expectAcceptedAsAlice(craftJwt(accessClaims(alice.user.id), d.jwtSecret), { via: 'auth' });
});

// --- refused ------------------------------------------------------------------

const hourAgo = () => Math.floor(Date.now() / 1000) - 3600; // far beyond any clock-skew leeway

/** Bad tokens, built per test from the users and the deployment's secret. */
const BAD_TOKENS = {
  'garbage': () => 'not-a-jwt',
  'signed with another secret': ({ alice }) =>
    craftJwt(accessClaims(alice.user.id), randomBytes(36).toString('base64url')),
  'expired': ({ alice }) => craftJwt({ ...accessClaims(alice.user.id), exp: hourAgo() }, d.jwtSecret),
  'unsigned (alg none)': ({ alice }) =>
    craftJwt(accessClaims(alice.user.id), null, { alg: 'none', typ: 'JWT' }),
  'a real token with its payload altered': ({ alice, bob }) => {
    const [header, , signature] = alice.accessToken.split('.');
    const payload = Buffer.from(JSON.stringify(accessClaims(bob.user.id))).toString('base64url');
    return `${header}.${payload}.${signature}`;
  },
};

for (const [name, transports] of Object.entries(TRANSPORTS)) {
  d.test(`no token at all over ${name} is refused`, () => expectRefused(null, { transports }));
}

for (const [kind, make] of Object.entries(BAD_TOKENS)) {
  d.test(`a token that is ${kind} is refused wherever it is sent`, async () => {
    const token = make(await people());
    for (const via of PLACEMENTS) await expectRefused(token, { via, transports: TRANSPORTS.websocket });
    await expectRefused(token, { via: 'auth', transports: TRANSPORTS.polling });
  });
}

// --- precedence: auth.token, then the Authorization header, then ?token= -------

d.test('auth.token wins over the Authorization header', async () => {
  const { alice } = await people();
  await expectAcceptedAsAlice(alice.accessToken,
    { via: 'auth', extraHeaders: { authorization: 'Bearer not-a-jwt' } });
  await expectRefused('not-a-jwt',
    { via: 'auth', extraHeaders: { authorization: `Bearer ${alice.accessToken}` } });
});

d.test('the Authorization header wins over the token query parameter', async () => {
  const { alice } = await people();
  await expectAcceptedAsAlice(alice.accessToken, { via: 'header', query: { token: 'not-a-jwt' } });
  await expectRefused('not-a-jwt', { via: 'header', query: { token: alice.accessToken } });
});

// --- the gateway is undisturbed -------------------------------------------------

d.test('after all refusals the gateway is healthy and still accepts clients', async () => {
  for (const probe of ['/healthz', '/readyz']) {
    const res = await d.api('GET', probe, { baseUrl: d.gateway(0) });
    assert.equal(res.status, 200, `gateway ${probe}`);
  }
  const { alice } = await people();
  await expectAcceptedAsAlice(alice.accessToken, { via: 'auth', transports: ['polling', 'websocket'] });
});
