// Courier behind PgBouncer 1.18 (Debian's, no prepared-statement support) in transaction
// pooling mode, with 4 server connections for the deployment's database:
// DATABASE_URL goes through the bouncer with DATABASE_PREPARED_STATEMENTS=false, and
// the migrations run over DATABASE_MIGRATION_URL, a direct connection.
// 1. 60 senders at once: send -> worker -> socket delivery and history, every message
//    exactly once, many client connections on few server connections, and no
//    prepared-statement or protocol error (26000, 42P05, 08P01) in any log.
// 2. A role without DATABASE_MIGRATION_URL starts on a current schema (it checks, it does
//    not migrate) and serves; on a database behind it, it and `courier migrate` refuse
//    with one line naming DATABASE_MIGRATION_URL.
// 3. The control: the same bouncer with prepared statements on (sqlx's named
//    statements) fails requests, so the setting is what makes 1 pass.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after } from 'node:test';

import { EVENTS } from './contract.mjs';
import { barrier, freePorts, run, sleep, uniqueResourceName, useDeployment, waitFor } from './harness.mjs';
import { startPgBouncer } from './instances.mjs';

const POOL_SIZE = 4;
const SENDERS = 60;
const PER_SENDER = 3;
/** What a statement split across server connections looks like, in Courier's or PgBouncer's log. */
const PROTOCOL_ERRORS = /26000|42P05|08P01|prepared statement|protocol violation|unnamed portal/i;

const box = { bouncer: null };

const d = useDeployment({
  mode: 'split',
  services: async () => {
    box.bouncer = await startPgBouncer({ poolSize: POOL_SIZE });
    Object.assign(d.extraEnv, {
      DATABASE_URL: box.bouncer.url(d.database),
      DATABASE_PREPARED_STATEMENTS: 'false',
      DATABASE_MIGRATION_URL: d.databaseUrl, // direct: `courier migrate` and each role
    });
    return {};
  },
});

after(async () => {
  await d.stop();
  await box.bouncer?.stop();
});

/**
 * Runs a REST call again while it fails with 503 `unavailable` (the contract's "retry
 * later"; 60 callers queueing for 4 server connections on a loaded machine can see it),
 * after its Retry-After, as a client would; a send keeps its clientMessageId, so a retry
 * cannot duplicate it.
 */
async function retrying(call, tries = 5) {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (i >= tries || !/\b503\b.*"unavailable"/.test(String(err.message))) throw err;
      await sleep(1000 * i); // Retry-After is 1 s; back off further on each try
    }
  }
}

/** The bouncer's SHOW POOLS row of the deployment's database. */
async function pool(database = d.database) {
  const row = (await box.bouncer.show('POOLS')).find((r) => r.database === database && r.user === 'postgres');
  assert.ok(row, `no pool for ${database} in SHOW POOLS`);
  const n = (k) => Number(row[k]);
  return {
    clients: n('cl_active') + n('cl_waiting'),
    servers: n('sv_active') + n('sv_idle') + n('sv_used') + n('sv_tested') + n('sv_login'),
    waiting: n('cl_waiting'),
  };
}

/** Fails when a process's output or the bouncer's log shows a statement split across servers. */
function assertNoProtocolErrors(processes) {
  let lines = 0;
  for (const p of processes) {
    const text = `${p.stderr}${p.stdout}`.split('\n');
    lines += text.length;
    const bad = text.filter((l) => PROTOCOL_ERRORS.test(l));
    assert.deepEqual(bad.slice(0, 5), [], `${p.name}: ${bad.length} prepared-statement/protocol error line(s)`);
  }
  const log = readFileSync(box.bouncer.logFiles()[0], 'utf8').split('\n');
  const bad = log.filter((l) => PROTOCOL_ERRORS.test(l));
  assert.deepEqual(bad.slice(0, 5), [], `pgbouncer.log: ${bad.length} protocol error line(s)`);
  process.stderr.write(`[pgbouncer] 0 prepared-statement/protocol errors in ${lines} log lines of `
    + `${processes.map((p) => p.name).join(', ')} and ${log.length} of pgbouncer.log\n`);
}

d.test(`${SENDERS} concurrent senders through PgBouncer (pool ${POOL_SIZE}): each message delivered once and in history`,
  { timeout: 180_000 }, async () => {
    // Sample the pool while the load runs: many clients, never more than POOL_SIZE servers.
    const seen = { clients: 0, servers: 0, waiting: 0, samples: 0 };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const p = await pool();
        seen.clients = Math.max(seen.clients, p.clients);
        seen.servers = Math.max(seen.servers, p.servers);
        seen.waiting = Math.max(seen.waiting, p.waiting);
        seen.samples++;
        await sleep(50); // a sampling interval, not a wait for something to happen
      }
    })();

    const sent = [];
    let socket;
    let senders;
    let chats;
    try {
      const hub = await d.register('hub');
      senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => d.register(`sender${i}`)));
      chats = await Promise.all(senders.map((s) => retrying(() => d.createDirect(s.accessToken, hub.user.id))));
      socket = await d.connect(0, hub.accessToken, { label: 'hub' });
      await Promise.all(senders.map(async (s, i) => {
        for (let k = 0; k < PER_SENDER; k++) {
          const id = randomUUID();
          const m = await retrying(() => d.send(s.accessToken, chats[i].id, `through the bouncer ${i}.${k}`, id));
          sent.push({ ...m, chatId: chats[i].id, sender: s });
        }
      }));
      const total = SENDERS * PER_SENDER;
      await waitFor(() => socket.count(EVENTS.NEW) >= total, 60_000,
        { message: () => `hub got ${socket.count(EVENTS.NEW)} of ${total} messages` });
    } finally {
      sampling = false;
      await sampler;
    }
    await barrier(d, [socket]);

    // Exactly once each on the socket.
    const got = socket.messages(EVENTS.NEW).map((m) => m.clientMessageId);
    assert.equal(got.length, sent.length, 'one chat.message.new per message sent');
    assert.deepEqual(new Set(got), new Set(sent.map((m) => m.clientMessageId)));

    // And in each chat's history, in order, once.
    await Promise.all(senders.map(async (s, i) => {
      const page = await d.history(s.accessToken, chats[i].id, { limit: 100 });
      const mine = sent.filter((m) => m.chatId === chats[i].id).map((m) => m.clientMessageId);
      assert.deepEqual(page.messages.map((m) => m.clientMessageId), mine, `history of sender ${i}`);
      assert.deepEqual(page.messages.map((m) => m.sequence), [1, 2, 3], `sequences of sender ${i}`);
    }));

    const clients = (await box.bouncer.show('CLIENTS')).filter((c) => c.database === d.database).length;
    const servers = (await box.bouncer.show('SERVERS')).filter((c) => c.database === d.database).length;
    const stats = (await box.bouncer.show('STATS')).find((r) => r.database === d.database);
    process.stderr.write(`[pgbouncer] ${sent.length} messages; during the load (${seen.samples} samples of SHOW POOLS): `
      + `at most ${seen.clients} client connections active or waiting, ${seen.waiting} waiting, `
      + `${seen.servers} server connections; after: ${clients} client / ${servers} server connections; `
      + `transactions ${stats?.total_xact_count}, queries ${stats?.total_query_count}\n`);
    assert.ok(seen.servers <= POOL_SIZE && servers <= POOL_SIZE, `at most ${POOL_SIZE} server connections`);
    assert.ok(clients > POOL_SIZE, `more client connections (${clients}) than servers: they were shared`);
    assertNoProtocolErrors(d.processes);
  });

d.test('without DATABASE_MIGRATION_URL: a role checks the schema instead of migrating, and refuses one behind',
  { timeout: 120_000 }, async () => {
    // On the current schema: it starts and serves.
    const [port] = await freePorts(1);
    const api = d.spawn('api-no-migration-url', 'api', `http://127.0.0.1:${port}`,
      { PORT: String(port), DATABASE_MIGRATION_URL: '' });
    await api.waitReady();
    const [a, b] = await d.registerAll('nomig_a', 'nomig_b');
    const res = await d.api('POST', '/chats', {
      baseUrl: api.healthUrl, token: a.accessToken, body: { type: 'direct', participantIds: [b.user.id] },
    });
    assert.ok([200, 201].includes(res.status), `create chat through it: ${res.status} ${JSON.stringify(res.body)}`);
    const history = await d.api('GET', `/chats/${res.body.id}/messages`, { baseUrl: api.healthUrl, token: b.accessToken });
    assert.equal(history.status, 200);

    // A database whose schema is behind (here: none) through the bouncer.
    const empty = uniqueResourceName();
    await d.infra.createDatabase(empty);
    try {
      const env = d.env({ DATABASE_URL: box.bouncer.url(empty), DATABASE_MIGRATION_URL: '', RUST_LOG: 'off' });
      const needs = /DATABASE_MIGRATION_URL: schema at 0, this build needs \d{14}: run `courier migrate` with DATABASE_MIGRATION_URL$/;
      const [other] = await freePorts(1);
      const failed = await run(d.binary('api'), [], { env: { ...env, PORT: String(other) }, timeoutMs: 30_000 })
        .then(() => null, (e) => e);
      assert.ok(failed && failed.exitCode !== 0, 'api started on a database behind its migrations');
      const lines = failed.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one stderr line:\n${failed.stderr}`);
      assert.match(lines[0], needs);
      process.stderr.write(`[pgbouncer] api without DATABASE_MIGRATION_URL, schema behind: ${lines[0]}\n`);

      const migrate = await run(d.binary('courier'), ['migrate'], { env, timeoutMs: 30_000 }).then(() => null, (e) => e);
      assert.ok(migrate && migrate.exitCode !== 0, 'courier migrate ran through the bouncer');
      assert.match(migrate.stderr, /DATABASE_MIGRATION_URL: needed with DATABASE_PREPARED_STATEMENTS=false/);
      const tables = await run('psql', [d.infra.databaseUrl(empty), '-qAtc', "SELECT to_regclass('_sqlx_migrations') IS NULL"]);
      assert.equal(tables.stdout.trim(), 't', 'nothing was migrated');
    } finally {
      await d.infra.dropDatabase(empty);
    }
    await api.kill('SIGTERM');
    assertNoProtocolErrors(d.processes);
  });

d.test('control: prepared statements on through the same bouncer fail', { timeout: 120_000 }, async () => {
  const accounts = await Promise.all(Array.from({ length: 20 }, (_, i) => d.register(`control${i}`)));
  const [port] = await freePorts(1);
  const api = d.spawn('api-prepared', 'api', `http://127.0.0.1:${port}`,
    { PORT: String(port), DATABASE_PREPARED_STATEMENTS: 'true', RUST_LOG: 'warn' });
  try {
    await api.waitReady();
    // Parameterised queries (sqlx's named statements) from many connections at once.
    const results = await Promise.all(accounts.flatMap((acc) => [0, 1, 2].map(() =>
      d.api('GET', '/chats', { baseUrl: api.healthUrl, token: acc.accessToken }).then((r) => r.status, () => 'network'))));
    const failures = results.filter((s) => s !== 200).length;
    const statuses = {};
    for (const s of results) statuses[s] = (statuses[s] ?? 0) + 1;
    const named = /prepared statement \W*sqlx_s_\d+\W* (does not exist|already exists)/;
    const lines = `${api.stderr}${api.stdout}`.split('\n').filter((l) => named.test(l));
    process.stderr.write(`[pgbouncer] control, prepared statements on: ${failures} of ${results.length} requests failed `
      + `(${JSON.stringify(statuses)}); ${lines.length} log lines like "${lines[0]?.match(named)?.[0] ?? '-'}"\n`);
    assert.ok(failures > 0, 'every request succeeded with named statements through transaction pooling');
  } finally {
    await api.kill('SIGTERM');
  }
});
