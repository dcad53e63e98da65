// TLS to PostgreSQL (DATABASE_URL ?sslmode=..., sslrootcert, sslcert, sslkey). A
// PostgreSQL of this test's own runs with ssl=on and a per-run PKI (pki.mjs); the user
// `courier_mtls` may only log in with its client certificate (`hostssl ... cert`). The
// shared PostgreSQL is not touched.
// 1. sslmode=verify-full with the client certificate (mutual TLS): `courier migrate`
//    and the split deployment (api, worker, gateway) start, a message round-trips
//    (send -> worker -> socket delivery -> history), and pg_stat_ssl shows every one of
//    Courier's sessions encrypted with the client certificate.
// 2. Each TLS failure at start-up (wrong CA, also under require with sslrootcert, host
//    name not in the certificate, no or a refused client certificate, plaintext server,
//    expired certificate; also from `courier migrate`) makes the process exit non-zero at
//    once with one stderr line naming DATABASE_URL and the cause; bad certificate files and sslmode=allow stop it as configuration
//    errors. The plaintext and expired cases restart the same instance without TLS and
//    with the expired certificate, then put it back.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { Deployment, directRoundTrip, freePorts, run } from './harness.mjs';
import { startPostgres } from './instances.mjs';
import { makePki } from './pki.mjs';

const USER = 'courier_mtls';
const box = { pki: null, pg: null, tls: null };
const d = new Deployment({ mode: 'split', gateways: 1, services: () => box.pg.services });

/** A DATABASE_URL of the deployment's database on the TLS instance. */
function tlsUrl({
  host = '127.0.0.1', port = box.pg.port, mode = 'verify-full', ca = box.pki.ca, client = box.pki.clients[USER],
} = {}) {
  const q = new URLSearchParams({ sslmode: mode });
  if (ca) q.set('sslrootcert', ca);
  if (client) {
    q.set('sslcert', client.cert);
    q.set('sslkey', client.key);
  }
  return `postgres://${USER}@${host}:${port}/${d.database}?${q}`;
}

before(async () => {
  box.pki = await makePki({ clients: [USER] });
  box.tls = { cert: box.pki.server.cert, key: box.pki.server.key, ca: box.pki.ca, certUsers: [USER] };
  box.pg = await startPostgres({ tls: box.tls });
  try {
    await run('psql', [box.pg.services.pgAdminUrl, '-v', 'ON_ERROR_STOP=1', '-qc',
      `CREATE ROLE ${USER} LOGIN SUPERUSER`]);
    d.extraEnv.DATABASE_URL = tlsUrl(); // `courier migrate` and every process
    await d.start();
  } catch (err) {
    await box.pg.stop();
    throw err;
  }
}, { timeout: 180_000 });

after(async () => {
  try {
    await d.stop();
  } finally {
    await box.pg?.stop();
    await box.pki?.remove();
  }
}, { timeout: 120_000 });

d.test('verify-full with a client certificate: ready, a message round-trips, every session encrypted', async () => {
  await directRoundTrip(d);
  const rows = (await d.infra.psql(`SELECT s.ssl, s.client_dn FROM pg_stat_activity a
    JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '${USER}'`)).trim().split('\n').filter(Boolean);
  // api, worker and gateway each hold at least one session (their /readyz pings).
  assert.ok(rows.length >= 3, `Courier's sessions as ${USER}:\n${rows.join('\n')}`);
  for (const r of rows) assert.equal(r, `t|/CN=${USER}`, `a session not over TLS with the client certificate: ${r}`);
});

/** Runs `binary args` with DATABASE_URL `url`: it must exit non-zero with one stderr line matching `re`. */
async function failsToStart(binary, args, url, re, { exitCode = null } = {}) {
  const [port, gatewayPort, workerPort] = await freePorts(3);
  const started = Date.now();
  const err = await run(d.binary(binary), args, {
    env: d.env({
      DATABASE_URL: url, PORT: String(port), GATEWAY_PORT: String(gatewayPort),
      WORKER_PORT: String(workerPort), RUST_LOG: 'off',
    }),
    timeoutMs: 30_000,
  }).then(() => null, (e) => e);
  assert.ok(err, `${binary} ${args.join(' ')} started although it should not have`);
  assert.ok(typeof err.exitCode === 'number' && err.exitCode !== 0,
    `${binary} did not exit by itself: ${err.message}`);
  if (exitCode !== null) assert.equal(err.exitCode, exitCode, err.stderr);
  const lines = err.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one stderr line expected:\n${err.stderr}`);
  assert.match(lines[0], re);
  assert.doesNotMatch(err.stderr, /panicked/);
  assert.doesNotMatch(err.stderr, /postgres:\/\//, 'the URL (with its password) is printed');
  const ms = Date.now() - started;
  assert.ok(ms < 15_000, `${binary} took ${ms} ms to give up`);
  process.stderr.write(`[tls-postgres] ${binary} exit ${err.exitCode} after ${ms} ms: ${lines[0]}\n`);
}

/** Restarts the instance with `tls` (null: plaintext), its server certificate and key `pair`. */
async function restartWith(tls, pair = box.pki.server) {
  writeFileSync(path.join(box.pg.dir, 'server.pem'), readFileSync(pair.cert)); // keeps owner and mode
  writeFileSync(path.join(box.pg.dir, 'server.key'), readFileSync(pair.key));
  box.pg.tls = tls;
  await box.pg.restart();
}

d.test('TLS failures at start-up: one line naming DATABASE_URL and the cause', { timeout: 180_000 }, async () => {
  const untrusted = /DATABASE_URL: TLS: the server's certificate is not trusted/;
  await failsToStart('api', [], tlsUrl({ ca: box.pki.otherCa }), new RegExp(`^Api: cannot start: ${untrusted.source}`));
  await failsToStart('courier', ['migrate'], tlsUrl({ ca: box.pki.otherCa }), new RegExp(`^migrate: ${untrusted.source}`));
  // require with sslrootcert verifies the chain (libpq's rule; sqlx alone would not).
  await failsToStart('api', [], tlsUrl({ mode: 'require', ca: box.pki.otherCa }),
    new RegExp(`^Api: cannot start: ${untrusted.source}`));
  await failsToStart('gateway', [], tlsUrl({ host: 'localhost' }),
    /^Gateway: cannot start: DATABASE_URL: TLS: the host name is not in the server's certificate/);
  await failsToStart('worker', [], tlsUrl({ client: null }),
    /^Worker: cannot start: DATABASE_URL: TLS: the server refused the client certificate/);
  // A client certificate the server's TLS refuses (the expired one, not for clientAuth).
  await failsToStart('worker', [], tlsUrl({ client: box.pki.expired }),
    /^Worker: cannot start: DATABASE_URL: TLS: the server refused the handshake \(client certificate/);
  // Caught by the configuration, before any connection.
  await failsToStart('api', [], tlsUrl({ ca: path.join(box.pki.dir, 'missing.pem') }),
    /^configuration error: DATABASE_URL: sslrootcert: cannot read .*missing\.pem/, { exitCode: 78 });
  await failsToStart('api', [], tlsUrl({ mode: 'allow', ca: null, client: null }),
    /^configuration error: DATABASE_URL: sslmode=allow is not supported/, { exitCode: 78 });

  try {
    await restartWith(null); // plaintext: the server answers the SSLRequest with N
    for (const mode of ['require', 'verify-full']) {
      await failsToStart('api', [], tlsUrl({ mode, ca: mode === 'require' ? null : box.pki.ca, client: null }),
        /^Api: cannot start: DATABASE_URL: TLS: the server does not support TLS/);
    }
    await restartWith(box.tls, box.pki.expired);
    await failsToStart('api', [], tlsUrl(),
      /^Api: cannot start: DATABASE_URL: TLS: the server's certificate has expired/);
  } finally {
    await restartWith(box.tls);
  }
  // Back on the good certificate, the same URL works again (`courier migrate` succeeds), and
  // verify-ca does not check the host name.
  for (const url of [tlsUrl(), tlsUrl({ mode: 'verify-ca', host: 'localhost' })]) {
    await run(d.binary('courier'), ['migrate'], { env: d.env({ DATABASE_URL: url, RUST_LOG: 'off' }) });
  }
});
