// Fault-injection toolkit, scenarios: the deployment of a fault test
// (`useFaultDeployment`, optionally on a dedicated service instance), its users, chats,
// clients and senders (`setupScenario`), and the `Scenario`: the message stream, the
// settling at the end, the report (fault-report.mjs) and its assertion.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';

import { FaultClient } from './fault-client.mjs';
import {
  DEFAULT_DLQ, DEFAULT_QUEUE_PREFIX, PARTITIONS, eventually, faultSettings, httpRequest,
} from './fault-common.mjs';
import { allReady, withAmqp } from './fault-probes.mjs';
import { computeReport, printSummary } from './fault-report.mjs';
import { Ledger, Sender } from './fault-senders.mjs';
import {
  Deployment, accessClaims, barrier, craftJwt, settings, sleep, uniqueUsername,
} from './harness.mjs';
import { startPostgres, startRabbitMQ, startRedis } from './instances.mjs';

const starters = { redis: startRedis, postgres: startPostgres, rabbitmq: startRabbitMQ };

/**
 * Accounts for `names` ({user, accessToken}). The first is registered over REST; the
 * others are cloned from it in SQL (same Argon2 hash, new id and username) with access
 * tokens signed by the deployment's secret: a debug build spends ~1.5 s of CPU per
 * Argon2 hash, and the fault scenarios are not about registration (handshake-auth and
 * direct tests cover it). COURIER_FAULT_REGISTER_ALL=1 registers every user over REST,
 * and so does any failure of the SQL shortcut (e.g. a changed users table).
 */
export async function createUsers(d, names) {
  const [first, ...rest] = names;
  const acc = { [first]: await d.register(first) };
  const viaRest = async () => {
    const list = await Promise.all(rest.map((n) => d.register(n)));
    rest.forEach((n, i) => { acc[n] = list[i]; });
  };
  if (['1', 'true', 'yes'].includes((process.env.COURIER_FAULT_REGISTER_ALL ?? '').toLowerCase())) {
    await viaRest();
    return acc;
  }
  try {
    const made = rest.map((n) => ({ name: n, id: randomUUID(), username: uniqueUsername(n) }));
    const values = made.map((m) => `('${m.id}'::uuid, '${m.username}', '${m.name}')`).join(', ');
    await d.sql(`INSERT INTO users (id, username, display_name, password_hash)
      SELECT v.id, v.username, v.display_name, u.password_hash
      FROM (VALUES ${values}) AS v(id, username, display_name), users u WHERE u.id = '${acc[first].user.id}'`);
    for (const m of made) {
      acc[m.name] = {
        user: { id: m.id, username: m.username, displayName: m.name },
        accessToken: craftJwt(accessClaims(m.id, 3600), d.jwtSecret),
        username: m.username,
      };
    }
    // The API must know them (GET /users/:id) before chats are made with them.
    const res = await httpRequest(d.apiUrl, 'GET', `/users/${made[0].id}`, { token: acc[first].accessToken });
    assert.equal(res.status, 200, `cloned user not visible: ${res.status} ${JSON.stringify(res.body)}`);
  } catch (err) {
    process.stderr.write(`[fault] cloning users in SQL failed (${err.message.split('\n')[0]}); registering over REST\n`);
    await viaRest();
  }
  return acc;
}

/**
 * Registers node:test hooks for one fault scenario: an optional dedicated service
 * instance (`instance`: 'redis' | 'postgres' | 'rabbitmq', or an async function starting
 * one) started first, then a split deployment on it (its own database, vhost, Redis
 * prefix). Teardown always runs:
 * the deployment, then the instance.
 */
export function useFaultDeployment({ instance = null, gateways = 2, workers = 1, env = {} } = {}) {
  const box = { instance: null };
  const d = new Deployment({
    mode: 'split', gateways, workers,
    env: { RUST_LOG: faultSettings.rustLog, ...env },
    services: () => box.instance?.services ?? {},
  });
  before(async () => {
    if (instance) box.instance = await (typeof instance === 'function' ? instance() : starters[instance]());
    try {
      await d.start();
    } catch (err) {
      if (box.instance) await box.instance.stop();
      throw err;
    }
  }, { timeout: 180_000 });
  after(async () => {
    try {
      await d.stop();
    } finally {
      if (box.instance) await box.instance.stop();
    }
  }, { timeout: 120_000 });
  return { d, instance: () => box.instance };
}

/**
 * Six users, three groups and a direct chat, seven sockets over two gateways (ben has
 * two devices), four senders. `senderOptions` per sender label (e.g. {ana: {devices: 2,
 * duplicateAcrossDevices: true}}); `extraClients` adds sockets, e.g. [{user: 'ana', gateway: 1}];
 * `senderChats` replaces which chats (titles) each sender writes to; `recovery` is the
 * clients' recovery ('sync', or 'offset': auth.offset only, never chat.sync; see FaultClient).
 */
export async function setupScenario(d, name, {
  senderOptions = {}, extraClients = [], senderChats = null, recovery = 'sync',
} = {}) {
  const names = ['ana', 'ben', 'cal', 'dee', 'eve', 'fay'];
  const acc = await createUsers(d, names);
  const id = (n) => acc[n].user.id;

  const groups = [
    { title: 'g1', owner: 'ana', members: ['ana', 'ben', 'cal', 'dee'] },
    { title: 'g2', owner: 'cal', members: ['cal', 'dee', 'eve', 'fay'] },
    { title: 'g3', owner: 'eve', members: ['eve', 'ana', 'ben', 'fay'] },
  ];
  const chats = [];
  for (const g of groups) {
    const chat = await d.createGroup(acc[g.owner].accessToken, `${name} ${g.title}`,
      g.members.filter((m) => m !== g.owner).map(id));
    chats.push({ id: chat.id, title: g.title, members: g.members });
  }
  const dm = await d.createDirect(acc.ana.accessToken, id('fay'));
  chats.push({ id: dm.id, title: 'dm', members: ['ana', 'fay'] });
  const chatsOf = (user) => chats.filter((c) => c.members.includes(user));

  const placement = [
    { user: 'ana', gateway: 0 }, { user: 'ben', gateway: 0 }, { user: 'cal', gateway: 0 },
    { user: 'dee', gateway: 1 }, { user: 'eve', gateway: 1 }, { user: 'fay', gateway: 1 },
    { user: 'ben', gateway: 1 }, ...extraClients,
  ];
  const gatewayUrls = d.gatewayUrls;
  const seen = {};
  const clients = placement.map(({ user, gateway }) => {
    seen[user] = (seen[user] ?? 0) + 1;
    return new FaultClient({
      label: `${user}#${seen[user]}@gw${gateway + 1}`, account: acc[user],
      chatIds: chatsOf(user).map((c) => c.id), gatewayUrls, gateway: gateway % gatewayUrls.length, recovery,
    });
  });
  await Promise.all(clients.map((c) => c.start()));

  const ledger = new Ledger();
  const plan = senderChats ?? { ana: ['g1', 'g3', 'dm'], cal: ['g1', 'g2'], eve: ['g2', 'g3'], fay: ['g2', 'g3', 'dm'] };
  const senders = Object.entries(plan).map(([user, titles]) => new Sender(d, acc[user], ledger, {
    label: user, chats: titles.map((t) => chats.find((c) => c.title === t)), ...(senderOptions[user] ?? {}),
  }));

  return new Scenario({ name, d, accounts: acc, chats, clients, senders, ledger, recovery });
}

export class Scenario {
  constructor(fields) {
    Object.assign(this, fields);
    this.t0 = Date.now();
    this.marks = [];
    this.streamDone = false;
  }

  mark(what) {
    this.marks.push({ at: Date.now() - this.t0, what });
    if (settings.verbose) process.stderr.write(`[fault ${this.name}] +${Date.now() - this.t0} ms ${what}\n`);
  }

  /**
   * Starts the stream in the background: every sender sends `perSender` messages round
   * robin over its chats at `rate` per second. Resolves when all are done (or after
   * `deadlineMs`, when no sender starts another message; a test may move
   * `streamDeadline`, ms since epoch, to end the stream earlier).
   */
  stream({ perSender = faultSettings.perSender, rate = faultSettings.ratePerSender, deadlineMs = faultSettings.streamDeadlineMs } = {}) {
    this.streamDeadline = Date.now() + deadlineMs;
    const interval = 1000 / rate;
    this.mark('stream starts');
    this.streaming = Promise.all(this.senders.map(async (s, si) => {
      await sleep((si * interval) / this.senders.length);
      for (let i = 0; i < perSender && Date.now() < this.streamDeadline; i++) {
        const started = Date.now();
        const chat = s.chats[i % s.chats.length];
        await s.send(chat.id, `${s.label} #${i + 1} to ${chat.title}`);
        const wait = interval - (Date.now() - started);
        if (wait > 0) await sleep(wait);
      }
    })).then(() => { this.streamDone = true; this.mark('stream done'); });
    return this.streaming;
  }

  /**
   * Per client, how long after `since` (ms since epoch) its first live message event
   * arrived (null: none): how long live delivery stayed dark after a recovery.
   */
  liveResumedAfter(since) {
    return Object.fromEntries(this.clients.map((c) => {
      const first = c.liveTimes.find((t) => t >= since);
      return [c.label, first === undefined ? null : first - since];
    }));
  }

  /**
   * The end of a Redis failover promoted at `promotedAt`: every process ready again, the
   * `/readyz` watch stopped (kept as `readyz`), the stream settled; prints
   * `<label>-dark-window: ...` and returns the first live event per socket after the
   * promotion and the slowest of them.
   */
  async afterFailover(watcher, label, killAt, promotedAt) {
    try {
      await allReady(this.d);
      this.mark('every process ready again');
    } finally {
      this.readyz = await watcher.stop();
    }
    await this.settle();
    const firstLive = this.liveResumedAfter(promotedAt);
    const worst = Math.max(...Object.values(firstLive).map((v) => v ?? Infinity));
    process.stdout.write(`${label}-dark-window: kill->promotion ${promotedAt - killAt} ms; promotion->first live event per socket ${JSON.stringify(firstLive)} (slowest ${worst} ms)\n`);
    return { firstLive, worst };
  }

  /** Resolves once `n` messages were accepted (or the stream ended). */
  async acceptedAtLeast(n, timeoutMs = 30_000) {
    const ok = await eventually(() => this.ledger.acceptedCount >= n || this.streamDone, timeoutMs, 20);
    assert.ok(ok, `the stream did not reach ${n} accepted messages in ${timeoutMs} ms (${this.ledger.acceptedCount})`);
  }

  /**
   * The persisted rows of the scenario's chats, oldest first per chat (a deployment may
   * run several scenarios one after the other, each in chats of its own).
   */
  rows() {
    const chats = this.chats.map((c) => `'${c.id}'::uuid`).join(', ');
    return this.d.sqlJson(`SELECT coalesce(json_agg(json_build_object(
        'id', id, 'chatId', chat_id, 'senderId', sender_id, 'clientMessageId', client_message_id,
        'content', content, 'sequence', sequence) ORDER BY chat_id, sequence), '[]') FROM messages
        WHERE chat_id IN (${chats})`);
  }

  /**
   * The end of a scenario: wait until every accepted message is persisted (bounded),
   * let live delivery settle, sync every client once more, and watch a little longer.
   */
  async settle({ persistTimeoutMs = 45_000 } = {}) {
    await this.streaming;
    const accepted = new Set(this.ledger.all.filter((r) => r.accepted).map((r) => r.cmid));
    await eventually(async () => {
      const ids = await this.d.sql('SELECT client_message_id FROM messages');
      const have = new Set(ids.split('\n').filter(Boolean));
      return [...accepted].every((c) => have.has(c));
    }, persistTimeoutMs, 250);
    this.mark('accepted messages persisted (or timeout)');
    // Live delivery: until every client holds every persisted message of its chats, or
    // no event arrived for 2 s (lost notifications are then left to chat.sync).
    const rows = await this.rows();
    const want = new Map();
    for (const r of rows) want.set(r.chatId, Math.max(want.get(r.chatId) ?? 0, r.sequence));
    const complete = () => this.clients.every((c) => c.chatIds.every((chat) => c.have.get(chat).size >= (want.get(chat) ?? 0)));
    const deadline = Date.now() + 15_000;
    while (!complete() && Date.now() < deadline) {
      const lastEvent = Math.max(...this.clients.map((c) => c.lastEventAt));
      if (Date.now() - lastEvent > 2000 && !this.clients.some((c) => c.reconnecting)) break;
      await sleep(100);
    }
    this.mark('live delivery settled');
    await Promise.all(this.clients.map((c) => c.finalSync()));
    // A late copy of anything published so far would be in once the marker is.
    await barrier(this.d, this.clients, 30_000);
    this.mark('final sync done');
  }

  /**
   * The broker as the deployment's vhost shows it: messages in the DLQ, and per partition
   * queue the ready messages and consumers (a missing queue counts as -1).
   */
  async brokerState(dlq = DEFAULT_DLQ) {
    return withAmqp(this.d, async (conn) => {
      const check = async (queue) => {
        const ch = await conn.createChannel(); // a failed check closes the channel
        ch.on('error', () => {});
        try {
          const ok = await ch.checkQueue(queue);
          await ch.close().catch(() => {});
          return { queue, ready: ok.messageCount, consumers: ok.consumerCount };
        } catch {
          return { queue, ready: -1, consumers: -1 };
        }
      };
      const partitions = [];
      for (let n = 0; n < PARTITIONS; n++) partitions.push(await check(`${DEFAULT_QUEUE_PREFIX}.${n}`));
      const dead = await check(dlq);
      return { dlq: Math.max(0, dead.ready), partitions };
    });
  }

  /**
   * Counts the worker log lines (RUST_LOG info/warn, JSON) that say a message was sent to
   * a retry queue or dead-lettered: an outage must cause neither.
   */
  workerDispositions() {
    const out = { retried: 0, deadLettered: 0 };
    for (const p of this.d.processes.filter((x) => x.binaryName === 'worker')) {
      for (const line of p.stderr.toString().split('\n')) {
        if (/retrying message later/.test(line)) out.retried++;
        if (/dead-lettering/.test(line)) out.deadLettered++;
      }
    }
    return out;
  }

  /** Computes the report, prints the summary lines, and returns it (see `assertReport`). */
  async report(options = {}) {
    const report = await computeReport(this, options);
    printSummary(report, this.marks);
    this.lastReport = report;
    return report;
  }

  chatTitle(chatId) { return this.chats.find((c) => c.id === chatId)?.title ?? chatId; }

  /**
   * Fails with every broken promise at once: exactly-once persistence of every 202, no
   * unknown rows, gap-free sequences, per-sender order, delivery to every connected
   * participant, no duplicate `chat.message.new` on a socket, the expected DLQ count.
   * `liveComplete`: also require that every message arrived live (no chat.sync needed),
   * for faults that leave Redis pub/sub and the gateways alone, or that Courier recovers
   * from by itself (its event streams). `noSync`: no client used chat.sync at all (the
   * scenario's clients run with recovery 'offset'). `liveWithinMs`: every live arrival came
   * at most that long after its message was accepted or the service came back (`s.upAt`),
   * whichever is later.
   */
  assertReport(report, { dlq = 0, liveComplete = false, noSync = false, liveWithinMs = null } = {}) {
    const problems = [...report.problems];
    if (noSync && report.syncCalls) problems.push(`the clients called chat.sync ${report.syncCalls} time(s) (recovery must come from the server alone)`);
    if (noSync && report.recoveryRefused.length) {
      problems.push(`${report.recoveryRefused.length} reconnect(s) with auth.offset got recovered:false: ${report.recoveryRefused.slice(0, 5).join('; ')}`);
    }
    if (liveWithinMs !== null && report.liveLateMaxMs === null) problems.push('liveWithinMs needs s.upAt (an outage)');
    if (liveWithinMs !== null && report.liveLateMaxMs > liveWithinMs) {
      problems.push(`live delivery came up to ${report.liveLateMaxMs} ms after the message was accepted or the service was back `
        + `(limit ${liveWithinMs} ms); slowest: ${report.liveLateSample.join(', ')}`);
    }
    if (report.sent === 0 || report.accepted === 0) problems.push('the stream sent nothing');
    if (report.dlq !== dlq) problems.push(`DLQ holds ${report.dlq} message(s), expected ${dlq}`);
    if (report.workerRetried) problems.push(`the worker sent ${report.workerRetried} message(s) to a retry queue (a per-message failure), see its log`);
    if (liveComplete && report.liveMissed) {
      problems.push(`${report.liveMissed} (client, message) pair(s) were not delivered live (only through chat.sync), `
        + `although the fault left Redis and the gateways alone; per socket ${JSON.stringify(report.liveMissedByClient)}; `
        + `e.g. ${report.liveMissedSample.join(', ')}`);
    }
    if (problems.length) {
      this.printHighlights();
      assert.fail(`scenario ${report.scenario}: ${problems.length} broken promise(s):\n - ${problems.join('\n - ')}`);
    }
  }

  /** Prints the WARN/ERROR lines of every process, grouped, to help diagnose a failure. */
  printHighlights(limit = 12) {
    process.stderr.write(`\n[fault ${this.name}] notable log lines per process:\n`);
    for (const p of this.d.processes) {
      const groups = new Map();
      for (const line of p.stderr.toString().split('\n')) {
        if (!/"level":"(WARN|ERROR)"|\b(WARN|ERROR)\b|panicked/.test(line)) continue;
        let key = line.slice(0, 160);
        try {
          const j = JSON.parse(line);
          const f = { ...j.fields, ...j };
          key = `${f.level} ${f.message ?? ''} ${f.error ?? ''} ${f.dependency ?? ''}`.slice(0, 200);
        } catch { /* not JSON */ }
        const g = groups.get(key) ?? { n: 0, example: line.slice(0, 400) };
        g.n++;
        groups.set(key, g);
      }
      process.stderr.write(`  ${p.name} (${p.describeExit()}):\n`);
      for (const [, g] of [...groups].slice(0, limit)) process.stderr.write(`    x${g.n} ${g.example}\n`);
    }
  }

  close() {
    for (const c of this.clients) c.close();
    for (const s of this.senders) s.close();
  }
}
