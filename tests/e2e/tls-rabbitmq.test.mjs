// TLS to RabbitMQ (opt-in: RABBITMQ_URI=amqps://..., RABBITMQ_CA_CERT,
// RABBITMQ_CLIENT_CERT, RABBITMQ_CLIENT_KEY). A RabbitMQ node of this test's own gets a
// TLS listener with a per-run PKI (pki.mjs) and the EXTERNAL mechanism (user
// `courier-client` = the client certificate's CN); the shared broker is not touched.
// 1. The whole split deployment talks amqps + EXTERNAL, verified against the test CA:
//    send -> worker -> socket delivery, then stop_app/start_app mid-stream, with 0 lost
//    and 0 duplicated (the fault scenario's report).
// 2. Each TLS failure at start-up (wrong CA, wrong host name, plaintext port under
//    amqps, expired certificate, an unparsable CA file) makes `api` exit non-zero with
//    one stderr line naming the variable and the cause.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import tls from 'node:tls';

import { outage, setupScenario, useFaultDeployment } from './fault.mjs';
import { freePorts, run } from './harness.mjs';
import { startRabbitMQ } from './instances.mjs';
import { makePki } from './pki.mjs';

const CLIENT = 'courier-client';
const box = { pki: null, tlsPort: null };

/** The node: plaintext AMQP for the harness's probes, TLS for Courier. */
async function startTlsRabbit() {
  box.pki = await makePki({ clients: [CLIENT] });
  const { pki } = box;
  [box.tlsPort] = await freePorts(1);
  const inst = await startRabbitMQ({
    plugins: ['rabbitmq_auth_mechanism_ssl'],
    config: [
      `listeners.ssl.default = 127.0.0.1:${box.tlsPort}`,
      `ssl_options.cacertfile = ${pki.ca}`,
      `ssl_options.certfile = ${pki.server.cert}`,
      `ssl_options.keyfile = ${pki.server.key}`,
      'ssl_options.verify = verify_peer',
      'ssl_options.fail_if_no_peer_cert = false',
      'auth_mechanisms.1 = PLAIN',
      'auth_mechanisms.2 = AMQPLAIN',
      'auth_mechanisms.3 = EXTERNAL',
      'ssl_cert_login_from = common_name',
    ],
  });
  // The deployment's broker user is the certificate's CN: its vhost permissions are
  // granted to it, and the harness's own probes log in with the password over plaintext.
  const password = randomBytes(12).toString('hex');
  await inst.ctl(['-q', 'add_user', CLIENT, password]);
  const base = inst.services;
  Object.defineProperty(inst, 'services', {
    get: () => ({ ...base, rabbitUser: CLIENT, rabbitPassword: password }),
  });
  return inst;
}

const { d, instance } = useFaultDeployment({
  instance: async () => {
    const inst = await startTlsRabbit();
    Object.assign(d.extraEnv, tlsEnv()); // every process of the deployment: amqps + EXTERNAL
    return inst;
  },
  workers: 1,
  gateways: 2,
});

after(async () => { await box.pki?.remove(); });

/** Courier's broker variables: amqps to the TLS port, the test CA, the client certificate. */
function tlsEnv({ host = '127.0.0.1', port = box.tlsPort, ca = box.pki.ca } = {}) {
  const client = box.pki.clients[CLIENT];
  return {
    RABBITMQ_URI: `amqps://${host}:${port}/${encodeURIComponent(d.vhost)}`,
    RABBITMQ_CA_CERT: ca,
    RABBITMQ_CLIENT_CERT: client.cert,
    RABBITMQ_CLIENT_KEY: client.key,
  };
}

d.test('amqps with a client certificate (EXTERNAL): flow, then a broker restart, 0 lost / 0 duplicated', { timeout: 240_000 }, async () => {
  const conns = await instance().ctl(['-q', 'list_connections', 'user', 'ssl', 'auth_mechanism']);
  const lines = conns.stdout.trim().split('\n').filter((l) => l.includes(CLIENT));
  assert.ok(lines.length >= 2, `api and worker connected as ${CLIENT}:\n${conns.stdout}`);
  for (const l of lines) assert.match(l, /\btrue\b.*EXTERNAL/, `not TLS + EXTERNAL: ${l}`);

  const s = await setupScenario(d, 'tls-rabbitmq');
  try {
    s.stream();
    await s.acceptedAtLeast(60);
    await outage(s, instance(), { watch: ['api', 'worker'] });
    await s.settle();
    const report = await s.report();
    s.assertReport(report, { dlq: 0 });
  } finally {
    s.close();
  }
});

/** A TLS server that presents the expired certificate (the handshake fails before AMQP). */
async function expiredServer() {
  const server = tls.createServer({
    cert: readFileSync(box.pki.expired.cert), key: readFileSync(box.pki.expired.key),
  }, (socket) => socket.on('error', () => {}));
  server.on('tlsClientError', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Starts `api` with `overrides`; it must exit non-zero with one stderr line matching `re`. */
async function failsToStart(overrides, re) {
  const [port] = await freePorts(1);
  const started = Date.now();
  const err = await run(d.binary('api'), [], {
    env: d.env({ ...overrides, PORT: String(port), RUST_LOG: 'off' }),
    timeoutMs: 30_000,
  }).then(() => null, (e) => e);
  assert.ok(err, 'api started although it should not have');
  assert.ok(typeof err.exitCode === 'number' && err.exitCode !== 0,
    `api did not exit by itself: ${err.message}`);
  const lines = err.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one stderr line expected:\n${err.stderr}`);
  assert.match(lines[0], re);
  process.stderr.write(`[tls-rabbitmq] exit ${err.exitCode}: ${lines[0]}\n`);
  assert.doesNotMatch(err.stderr, /panicked/);
  assert.ok(Date.now() - started < 30_000);
}

d.test('TLS failures at start-up: one line naming the variable and the cause', { timeout: 180_000 }, async () => {
  await failsToStart(tlsEnv({ ca: box.pki.otherCa }),
    /^Api: cannot start: RABBITMQ_URI: TLS: the broker's certificate is not trusted/);
  await failsToStart(tlsEnv({ host: 'localhost' }),
    /^Api: cannot start: RABBITMQ_URI: TLS: the host name is not in the broker's certificate/);
  await failsToStart(tlsEnv({ port: instance().port }),
    /^Api: cannot start: RABBITMQ_URI: TLS: the broker did not answer in TLS/);
  const server = await expiredServer();
  try {
    await failsToStart(tlsEnv({ port: server.address().port }),
      /^Api: cannot start: RABBITMQ_URI: TLS: the broker's certificate has expired/);
  } finally {
    server.close();
  }
  const garbage = path.join(box.pki.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  await failsToStart({ ...tlsEnv(), RABBITMQ_CA_CERT: garbage }, /RABBITMQ_CA_CERT.*no PEM certificate/);
  await failsToStart({ ...tlsEnv(), RABBITMQ_CLIENT_KEY: '' }, /RABBITMQ_CLIENT_KEY/);
});
