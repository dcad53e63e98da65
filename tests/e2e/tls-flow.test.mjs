// All three services over verified TLS, with mutual TLS on each (issue 24). One per-run
// PKI (pki.mjs) and instances of this test's own (instances.mjs):
//  - PostgreSQL with ssl=on; Courier logs in as `courier-client` with its client
//    certificate (`hostssl ... cert`), DATABASE_URL ?sslmode=verify-full&sslrootcert&sslcert&sslkey;
//  - Redis on a TLS-only port that requires a client certificate (tls-auth-clients yes),
//    the default user off and an ACL user: REDIS_URL=rediss://user:password@...;
//  - RabbitMQ with a TLS listener that requires a client certificate; Courier logs in
//    with EXTERNAL (RABBITMQ_URI=amqps://..., the certificate's CN is the user). Its
//    plaintext listener serves the harness's own probes (password login) only.
// A split deployment (api, worker, two gateways) on them runs the fault scenarios'
// machinery (fault.mjs: retrying senders, failing-over sockets, the report):
//  1. the flow: send -> worker -> socket delivery, and recovery: sockets dropped
//     mid-stream reconnect to the other gateway with auth.offset and get what they missed;
//  2. PostgreSQL, Redis and RabbitMQ restarted in turn mid-stream: 0 lost, 0 duplicated,
//     /readyz answers 503 naming the service while it is away (polled until seen) and 200
//     once it is back, and the log has a line naming the dependency and the cause;
//  3. PostgreSQL, RabbitMQ and Redis come back from a restart with an expired certificate: the TLS
//     sessions cannot be re-established, /readyz names the service and the log line names
//     the TLS cause; with the right certificate again, /readyz answers 200.
// Every stage checks that the sessions (reconnected ones too) are TLS with the client
// certificate: pg_stat_ssl, Redis CLIENT LIST on its TLS-only port, rabbitmqctl
// list_connections ssl auth_mechanism. Prints one `tls-flow` line per stage.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  allReady, assertReadyzNamed, eventually, faultSettings, outage, setupScenario, useFaultDeployment,
} from './fault.mjs';
import { freePorts, run } from './harness.mjs';
import { startPostgres, startRabbitMQ, startRedis } from './instances.mjs';
import { makePki } from './pki.mjs';

const CLIENT = 'courier-client'; // the client certificate's CN: PostgreSQL and RabbitMQ user
const REDIS_USER = 'courier';
const stack = { pki: null, pg: null, redis: null, rabbit: null, rabbitTlsPort: null, rabbitCert: null, redisPassword: null };

const q = encodeURIComponent;

/** PostgreSQL: `courier-client` may create in `public` and finds btree_gin and pg_trgm in every new database. */
async function startTlsPostgres(pki) {
  const pg = await startPostgres({ tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca, certUsers: [CLIENT] } });
  const admin = pg.services.pgAdminUrl;
  const psql = (url, sql) => run('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql]);
  await psql(admin, `CREATE ROLE "${CLIENT}" LOGIN`);
  // A managed database as an operator prepares it: the extensions made by the admin, the
  // application's role allowed to create its tables (new databases copy template1).
  await psql(admin.replace(/\/postgres$/, '/template1'),
    `GRANT CREATE ON SCHEMA public TO "${CLIENT}"; CREATE EXTENSION IF NOT EXISTS btree_gin; `
    + 'CREATE EXTENSION IF NOT EXISTS pg_trgm');
  return pg;
}

/** RabbitMQ: a TLS listener that requires a client certificate, EXTERNAL by its CN. */
async function startTlsRabbit(pki) {
  [stack.rabbitTlsPort] = await freePorts(1);
  // A copy of the server's pair of its own, which a test may swap (see the last test).
  stack.rabbitCert = { cert: path.join(pki.dir, 'rabbit-server.pem'), key: path.join(pki.dir, 'rabbit-server.key') };
  writeFileSync(stack.rabbitCert.cert, readFileSync(pki.server.cert));
  writeFileSync(stack.rabbitCert.key, readFileSync(pki.server.key));
  const inst = await startRabbitMQ({
    plugins: ['rabbitmq_auth_mechanism_ssl'],
    config: [
      `listeners.ssl.default = 127.0.0.1:${stack.rabbitTlsPort}`,
      `ssl_options.cacertfile = ${pki.ca}`,
      `ssl_options.certfile = ${stack.rabbitCert.cert}`,
      `ssl_options.keyfile = ${stack.rabbitCert.key}`,
      'ssl_options.verify = verify_peer',
      'ssl_options.fail_if_no_peer_cert = true',
      'auth_mechanisms.1 = PLAIN',
      'auth_mechanisms.2 = EXTERNAL',
      'ssl_cert_login_from = common_name',
    ],
  });
  // The harness grants the vhost to its user and probes over plaintext with a password:
  // that user is the certificate's CN, so Courier (EXTERNAL) gets the same permissions.
  const password = randomBytes(12).toString('hex');
  await inst.ctl(['-q', 'add_user', CLIENT, password]);
  const base = inst.services;
  Object.defineProperty(inst, 'services', { get: () => ({ ...base, rabbitUser: CLIENT, rabbitPassword: password }) });
  return inst;
}

/** The three instances (started together) as one, for useFaultDeployment. */
async function startStack() {
  stack.pki = await makePki({ clients: [CLIENT] });
  const { pki } = stack;
  stack.redisPassword = randomBytes(12).toString('hex');
  const started = await Promise.allSettled([
    startTlsPostgres(pki),
    startRedis({
      tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca, client: pki.clients[CLIENT], authClients: 'yes' },
      acl: { user: REDIS_USER, password: stack.redisPassword },
    }),
    startTlsRabbit(pki),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(started.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop()));
    await pki.remove();
    throw failed.reason;
  }
  [stack.pg, stack.redis, stack.rabbit] = started.map((r) => r.value);
  return {
    kind: 'tls stack',
    get services() { return { ...stack.pg.services, ...stack.redis.services, ...stack.rabbit.services }; },
    async stop() {
      await Promise.allSettled([stack.pg.stop(), stack.redis.stop(), stack.rabbit.stop()]);
      await pki.remove();
    },
  };
}

const { d } = useFaultDeployment({
  instance: async () => {
    const inst = await startStack();
    Object.assign(d.extraEnv, tlsEnv()); // every process, and `courier migrate`
    return inst;
  },
  workers: 1,
  gateways: 2,
});

/** Courier's variables: verified TLS with the client certificate to all three. */
function tlsEnv() {
  const { pki } = stack;
  const client = pki.clients[CLIENT];
  return {
    DATABASE_URL: `postgres://${CLIENT}@127.0.0.1:${stack.pg.port}/${d.database}`
      + `?sslmode=verify-full&sslrootcert=${q(pki.ca)}&sslcert=${q(client.cert)}&sslkey=${q(client.key)}`,
    REDIS_URL: `rediss://${REDIS_USER}:${stack.redisPassword}@127.0.0.1:${stack.redis.port}/0`,
    REDIS_CA_CERT: pki.ca,
    REDIS_CLIENT_CERT: client.cert,
    REDIS_CLIENT_KEY: client.key,
    RABBITMQ_URI: `amqps://127.0.0.1:${stack.rabbitTlsPort}/${q(d.vhost)}`,
    RABBITMQ_CA_CERT: pki.ca,
    RABBITMQ_CLIENT_CERT: client.cert,
    RABBITMQ_CLIENT_KEY: client.key,
  };
}

/**
 * Every session Courier holds is TLS with the client certificate, at `when` (after a
 * restart: the reconnected ones). Resolves the counts, for the stage's line.
 */
async function assertTlsSessions(when) {
  const pgRows = await d.sqlJson(`SELECT coalesce(json_agg(json_build_object('ssl', s.ssl, 'dn', s.client_dn,
      'version', s.version)), '[]') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.usename = '${CLIENT}' AND a.datname = '${d.database}'`);
  assert.ok(pgRows.length >= 2, `${when}: PostgreSQL sessions of ${CLIENT}: ${JSON.stringify(pgRows)}`);
  for (const r of pgRows) {
    assert.ok(r.ssl && /^TLS/.test(r.version) && r.dn?.includes(`CN=${CLIENT}`), `${when}: a PostgreSQL session without TLS + client certificate: ${JSON.stringify(r)}`);
  }

  const cli = async (args) => (await stack.redis.cli(args)).stdout.trim();
  assert.equal((await cli(['CONFIG', 'GET', 'port'])).split('\n')[1], '0', 'Redis has no plaintext port');
  assert.equal((await cli(['CONFIG', 'GET', 'tls-auth-clients'])).split('\n')[1], 'yes');
  const redisClients = (await cli(['CLIENT', 'LIST'])).split('\n')
    .filter((l) => / user=courier /.test(l) && !/ cmd=client\|list/.test(l));
  // Per process at least its connection manager; the gateways also their pub/sub.
  assert.ok(redisClients.length >= 6, `${when}: Redis connections of ${REDIS_USER} (TLS port only): ${redisClients.length}\n${redisClients.join('\n')}`);
  for (const l of redisClients) assert.match(l, new RegExp(` laddr=127\\.0\\.0\\.1:${stack.redis.port} `), l);

  const { stdout } = await stack.rabbit.ctl(['-q', 'list_connections', '--no-table-headers', 'user', 'ssl', 'auth_mechanism', 'client_properties']);
  const courierConns = stdout.split('\n').filter((l) => l.includes('connection_name'));
  assert.ok(courierConns.length >= 2, `${when}: Courier's RabbitMQ connections (api, worker):\n${stdout}`);
  for (const l of courierConns) assert.match(l, new RegExp(`^${CLIENT}\\s+true\\s+EXTERNAL\\b`), `${when}: not TLS + EXTERNAL: ${l.slice(0, 200)}`);
  return { pg: pgRows.length, redis: redisClients.length, rabbitmq: courierConns.length };
}

/** Polls /readyz of `names` until each answered 503 naming `dependency` at least once. */
function readyzNamedBy(names, dependency) {
  const seen = new Set();
  return async () => {
    await Promise.all(names.filter((n) => !seen.has(n)).map(async (n) => {
      const res = await fetch(`${d.process(n).healthUrl}/readyz`, { signal: AbortSignal.timeout(6000) }).catch(() => null);
      if (res?.status === 503 && (await res.text()).includes(dependency)) seen.add(n);
    }));
    return seen.size === names.length;
  };
}

/** The JSON log lines of process `name` since `since` (ms) naming `dependency` with a cause. */
function causeLines(name, dependency, since) {
  return d.process(name).stderr.toString().split('\n').flatMap((line) => {
    try {
      const j = JSON.parse(line);
      const f = { ...j, ...j.fields };
      return f.dependency === dependency && typeof f.cause === 'string' && f.cause
        && Date.parse(f.timestamp) >= since ? [f] : [];
    } catch { return []; }
  });
}

function printStage(stage, report, extra = {}) {
  const fields = {
    stage, sent: report.sent, accepted: report.accepted, delivered: report.delivered,
    lost: report.lost, duplicated: report.duplicates, status503: report.status503, ...extra,
  };
  process.stdout.write(`tls-flow ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}\n`);
}

function assertNoneLost(report) {
  assert.equal(report.lost, 0, 'lost messages');
  assert.equal(report.duplicates, 0, 'duplicated messages');
  assert.ok(report.delivered >= report.accepted, `delivered ${report.delivered} < accepted ${report.accepted}`);
}

d.test('the flow over TLS: send, worker, socket delivery, recovery with auth.offset', { timeout: 120_000 }, async () => {
  const sessions = await assertTlsSessions('start');
  const s = await setupScenario(d, 'tls-flow', { recovery: 'offset' });
  try {
    s.stream({ perSender: 50 });
    await s.acceptedAtLeast(60);
    // Three devices drop mid-stream and reconnect to the other gateway with auth.offset.
    const dropped = s.clients.filter((c) => /^(ana|ben|fay)#1/.test(c.label));
    for (const c of dropped) c.current.socket.disconnect();
    const back = await eventually(() => dropped.every((c) => c.reconnects.length >= 1 && c.connected && !c.reconnecting), 20_000);
    assert.ok(back, `not reconnected: ${dropped.filter((c) => !c.connected).map((c) => c.label)}`);
    await s.settle();
    const report = await s.report();
    s.assertReport(report, { dlq: 0, liveComplete: true, noSync: true });
    for (const c of dropped) {
      assert.equal(c.sessions.at(-1).recovered?.recovered, true, `${c.label}: session.recovered after the reconnect`);
      assert.notEqual(c.sessions.at(-1).gateway, c.sessions[0].gateway, `${c.label} failed over to the other gateway`);
    }
    assertNoneLost(report);
    printStage('flow', report, { reconnects: report.reconnects, sessions });
  } finally {
    s.close();
  }
});

/**
 * A restart of `service` mid-stream while every session is TLS: down until /readyz of
 * `watch` named it (polled, and at least 1.5 s of traffic), then up; every process ready
 * again, a log line with the dependency and cause, nothing lost or duplicated, and the
 * reconnected sessions TLS again.
 */
function restartTest(service, dependency, watch, { recovery = 'sync', assertions = {}, check = () => {} } = {}) {
  d.test(`${dependency} restarted mid-stream over TLS: /readyz names it, 0 lost, 0 duplicated`, { timeout: 150_000 }, async () => {
    const s = await setupScenario(d, `tls-${dependency}-restart`, { recovery });
    try {
      s.stream();
      await s.acceptedAtLeast(100);
      const before = Date.now();
      await outage(s, stack[service], { downMs: 1500, until: readyzNamedBy(watch, dependency), maxDownMs: 30_000, watch });
      await s.settle();
      const report = await s.report();
      s.assertReport(report, { dlq: 0, ...assertions });
      check(report);
      assertReadyzNamed(s, watch, dependency);
      // The cause is logged once /readyz has looked for it (in the background).
      await eventually(() => watch.every((n) => causeLines(n, dependency, before).length > 0), 10_000);
      const silent = watch.filter((n) => causeLines(n, dependency, before).length === 0);
      assert.deepEqual(silent, [], `no log line with dependency=${dependency} and a cause since the outage`);
      // The first line per process (the RabbitMQ link's next ones repeat each reconnect).
      const causes = watch.map((n) => { const f = causeLines(n, dependency, before)[0]; return `${n}: ${f.message}: ${f.cause}`; });
      const sessions = await assertTlsSessions(`after the ${dependency} restart`);
      assertNoneLost(report);
      printStage(`${dependency}-restart`, report, {
        downMs: s.upAt - s.downAt, readyz503MaxMs: report.readyz503MaxMs, sessions, causes,
      });
    } finally {
      s.close();
    }
  });
}

const everyone = ['api', 'worker', 'gateway-1', 'gateway-2'];
restartTest('pg', 'postgresql', everyone, { assertions: { liveComplete: true } });
restartTest('redis', 'redis', everyone, {
  recovery: 'offset',
  assertions: { liveComplete: true, noSync: true, liveWithinMs: faultSettings.liveWithinMs },
  check: (r) => assert.equal(r.status503, 0, 'sends are answered while Redis is away'),
});
restartTest('rabbit', 'rabbitmq', ['api', 'worker'], {
  check: (r) => assert.ok(r.status503 > 0, 'the senders never got a 503 while the broker was away'),
});

/**
 * `inst` restarted with the expired certificate (same CA, same name): every process's
 * reconnect fails verification. /readyz of `watch` names `dependency` and each logs the
 * TLS cause; restarted with the right certificate, every process is ready again.
 */
async function expiredCertificateRestart(inst, dependency, watch, { swap, restore }) {
  const before = Date.now();
  await inst.down();
  await swap(stack.pki.expired);
  try {
    await inst.up();
    const named = await eventually(readyzNamedBy(watch, dependency), 30_000, 100);
    assert.ok(named, `/readyz did not name ${dependency} while it presents an expired certificate`);
    // Polled: /readyz (polled here) logs a change of cause, the RabbitMQ link each failed reconnect.
    const expiredLine = (n) => causeLines(n, dependency, before).find((f) => /expired/i.test(f.cause));
    await eventually(async () => (await readyzNamedBy(watch, dependency)()) && watch.every(expiredLine), 30_000, 200);
    const expired = watch.map((n) => [n, expiredLine(n)]);
    const silent = expired.filter(([, f]) => !f).map(([n]) => n);
    assert.deepEqual(silent, [], `no log line with dependency=${dependency} and the expired certificate as cause: `
      + JSON.stringify(watch.map((n) => causeLines(n, dependency, before).map((f) => f.cause))));
    process.stdout.write(`tls-flow stage=${dependency}-expired-certificate readyz503=${JSON.stringify(watch)} `
      + `causes=${JSON.stringify(expired.map(([n, f]) => `${n}: ${f.message}: ${f.cause}`))}\n`);
  } finally {
    await inst.down().catch(() => { /* not up (its start with the expired certificate failed) */ });
    await restore();
    await inst.up();
  }
  await allReady(d);
}

d.test('TLS sessions that cannot come back (expired certificate after a restart): /readyz names the service, the log the cause', { timeout: 120_000 }, async () => {
  const pg = stack.pg;
  // Rewritten in place: the files keep their owner (postgres) and mode (0600).
  const pgInstall = (pair) => {
    writeFileSync(path.join(pg.dir, 'server.pem'), readFileSync(pair.cert));
    writeFileSync(path.join(pg.dir, 'server.key'), readFileSync(pair.key));
  };
  await expiredCertificateRestart(pg, 'postgresql', everyone, { swap: pgInstall, restore: () => pgInstall(stack.pki.server) });

  // RabbitMQ reads its certificate files again at start_app once its PEM cache is cleared.
  const rabbitInstall = (pair) => {
    writeFileSync(stack.rabbitCert.cert, readFileSync(pair.cert));
    writeFileSync(stack.rabbitCert.key, readFileSync(pair.key));
  };
  const rabbit = stack.rabbit;
  const clearPemCache = () => rabbit.ctl(['-q', 'eval', 'ssl:clear_pem_cache().']);
  await expiredCertificateRestart(rabbit, 'rabbitmq', ['api', 'worker'], {
    swap: async (pair) => { rabbitInstall(pair); await clearPemCache(); },
    restore: async () => { rabbitInstall(stack.pki.server); await clearPemCache(); },
  });

  const redis = stack.redis;
  const good = redis.tls;
  await expiredCertificateRestart(redis, 'redis', everyone, {
    // redis-cli (the instance's PING) skips verification meanwhile; Courier does not.
    swap: (pair) => { redis.tls = { ...good, ...pair, insecure: true }; },
    restore: () => { redis.tls = good; },
  });
});
