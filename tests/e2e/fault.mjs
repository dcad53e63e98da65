// Fault-injection toolkit: a steady stream of sends from several senders into several
// chats, with resilient clients connected, while a test breaks something; then the
// checks of Courier's promises (at-least-once transport, exactly-once persistence,
// per-chat order) against the deployment's database and the clients' logs.
//
// Client behaviour modelled here (what a correct Courier client does):
//  - a sender POSTs each message with a fresh clientMessageId and, on 503 or a network
//    error, retries with the SAME clientMessageId (bounded attempts, backoff, honouring
//    Retry-After); it records what finally got a 202;
//  - a socket client records every `chat.message.new` / `chat.message.saved` per socket;
//    when its socket drops it reconnects to the next gateway in its list and calls
//    `chat.sync` with, per chat, the highest sequence it holds without a gap (so messages
//    lost live are fetched), paging while `hasMore`; it syncs once more at the end.
//
// Each scenario prints one line:
//   fault-summary scenario=<name> sent=N accepted=N persisted=N delivered=N duplicates=N gaps=N dlq=N
// where sent = distinct messages (clientMessageIds) the senders tried, accepted = those that
// got a 202, persisted = rows in `messages`, delivered = persisted messages that every
// connected participant ended with (live or through chat.sync), duplicates = extra rows
// per clientMessageId plus `chat.message.new` received twice on one socket, gaps = missing
// or repeated sequences (and lastSequence mismatches), dlq = messages in the DLQ.
// A `fault-detail` line follows with the retry/outage/live-delivery counters.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { after, before } from 'node:test';

import amqplib from 'amqplib';
import { io } from 'socket.io-client';

import { EVENTS } from './contract.mjs';
import { Deployment, accessClaims, craftJwt, settings, sleep, uniqueUsername } from './harness.mjs';
import { startPostgres, startRabbitMQ, startRedis } from './instances.mjs';

export const DEFAULT_DLQ = 'chat.message.send.dlq';
export const DEFAULT_QUEUE_PREFIX = 'chat.message.send';
export const DEFAULT_EXCHANGE = 'chat.events';
export const PARTITIONS = 8;

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? v : fallback;
};

/** Knobs (environment overrides keep CI lean or make a local run heavier). */
export const faultSettings = Object.freeze({
  /** Messages each sender sends in a scenario. */
  perSender: envInt('COURIER_FAULT_PER_SENDER', 100),
  /** Messages per second per sender (4 senders). */
  ratePerSender: envInt('COURIER_FAULT_RATE', 20),
  /** How long a stream may run at most before senders stop issuing new messages. */
  streamDeadlineMs: envInt('COURIER_FAULT_STREAM_DEADLINE_MS', 60_000),
  /** Attempts and total time one message may take (503 / network errors are retried). */
  maxAttempts: envInt('COURIER_FAULT_MAX_ATTEMPTS', 25),
  messageDeadlineMs: envInt('COURIER_FAULT_MESSAGE_DEADLINE_MS', 45_000),
  /** How long a fault (service down) lasts. */
  downMs: envInt('COURIER_FAULT_DOWN_MS', 3000),
  /** RUST_LOG of the processes (info: shows reconnects, holds, dead-letters). */
  rustLog: process.env.COURIER_E2E_RUST_LOG ?? 'info',
});

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Partition of a chat, as Courier computes it: fnv1a_64(16 uuid bytes) mod count. */
export function partitionOf(chatId, count = PARTITIONS) {
  const bytes = Buffer.from(chatId.replace(/-/g, ''), 'hex');
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % BigInt(count));
}

/** Polls `predicate` until truthy or `timeoutMs`; resolves the value or false (no throw). */
export async function eventually(predicate, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
    } catch { /* keep polling */ }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * One HTTP request on a given agent (a "device": its own keep-alive connections).
 * Resolves {status, body, headers}; rejects on network errors and timeouts (err.code).
 */
export function httpRequest(baseUrl, method, urlPath, { token, body, agent, timeoutMs = 12_000 } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(urlPath, baseUrl);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text === '' ? null : text;
        if (text && (res.headers['content-type'] ?? '').includes('json')) {
          try { parsed = JSON.parse(text); } catch { /* keep text */ }
        }
        resolve({ status: res.statusCode, body: parsed, headers: res.headers });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------
// Ledger and senders
// ---------------------------------------------------------------------------

/** What the senders tried: one record per clientMessageId. */
export class Ledger {
  constructor() {
    this.records = new Map();
    this.issued = 0;
  }

  open(cmid, { chatId, senderId, content, sender }) {
    let rec = this.records.get(cmid);
    if (!rec) {
      rec = {
        cmid, chatId, senderId, content, sender, index: this.issued++,
        posts: 0, attempts: 0, accepted: false, acceptedBy: new Set(), firstAt: Date.now(), acceptedAt: null,
        n503: 0, n429: 0, netErrors: 0, unexpected: [], badAccepts: [], gaveUp: false, brokerIds: [], requestMs: [],
      };
      this.records.set(cmid, rec);
    }
    return rec;
  }

  get all() { return [...this.records.values()]; }
  get acceptedCount() { return this.all.filter((r) => r.accepted).length; }
}

/**
 * A sender (user) with one or more devices (HTTP agents). `send` posts a message and
 * retries on 503 / network errors with the same clientMessageId. With two devices and
 * `duplicateAcrossDevices`, every message is posted by both devices at once.
 */
export class Sender {
  constructor(d, account, ledger, { label, chats, devices = 1, duplicateAcrossDevices = false }) {
    this.d = d;
    this.account = account;
    this.ledger = ledger;
    this.label = label;
    this.chats = chats;
    this.devices = Array.from({ length: devices }, () => new http.Agent({ keepAlive: true, maxSockets: 4 }));
    this.duplicateAcrossDevices = duplicateAcrossDevices;
  }

  close() { for (const a of this.devices) a.destroy(); }

  /** Sends one message (all devices at once if duplicating); resolves the ledger record. */
  async send(chatId, content, cmid = randomUUID()) {
    const rec = this.ledger.open(cmid, { chatId, senderId: this.account.user.id, content, sender: this.label });
    if (this.duplicateAcrossDevices && this.devices.length > 1) {
      // Both devices at once; sometimes the second a few ms later, so it may race the
      // first through the broker, the worker's batch or the stored row.
      const skew = Math.random() < 0.5 ? 0 : Math.floor(Math.random() * 30);
      await Promise.all(this.devices.map((agent, i) =>
        sleep(i === 0 ? 0 : skew).then(() => this.post(rec, agent, i))));
    } else {
      await this.post(rec, this.devices[0], 0);
    }
    return rec;
  }

  async post(rec, agent, device) {
    rec.posts++;
    const deadline = Date.now() + faultSettings.messageDeadlineMs;
    for (let attempt = 1; attempt <= faultSettings.maxAttempts; attempt++) {
      rec.attempts++;
      let retryAfterMs = null;
      const started = Date.now();
      try {
        const res = await httpRequest(this.d.apiUrl, 'POST', `/chats/${rec.chatId}/messages`, {
          token: this.account.accessToken, agent, body: { content: rec.content, clientMessageId: rec.cmid },
        });
        rec.requestMs.push(Date.now() - started);
        if (res.status === 202) {
          if (res.body?.clientMessageId !== rec.cmid || typeof res.body?.brokerMessageId !== 'string') {
            rec.badAccepts.push(JSON.stringify(res.body));
          }
          rec.brokerIds.push(res.body?.brokerMessageId);
          rec.accepted = true;
          rec.acceptedBy.add(device);
          rec.acceptedAt ??= Date.now();
          return;
        }
        if (res.status === 429) {
          // Rate limited: a client waits as told and retries (counted; the scenarios stay
          // far below the default send limit, so this should not happen).
          rec.n429++;
          const ra = Number.parseFloat(res.headers['retry-after'] ?? '');
          if (Number.isFinite(ra)) retryAfterMs = ra * 1000;
        } else if (res.status === 503) {
          rec.n503++;
          if (res.body?.code !== 'unavailable' || !res.headers['retry-after']) {
            rec.unexpected.push(`503 without code unavailable / Retry-After: ${JSON.stringify(res.body)}`);
          }
          const ra = Number.parseFloat(res.headers['retry-after'] ?? '');
          if (Number.isFinite(ra)) retryAfterMs = ra * 1000;
        } else {
          // Not retryable for a client: recorded and given up.
          rec.unexpected.push(`${res.status} ${JSON.stringify(res.body)}`);
          return;
        }
      } catch (err) {
        rec.requestMs.push(Date.now() - started);
        rec.netErrors++;
      }
      if (attempt === faultSettings.maxAttempts || Date.now() >= deadline) break;
      const backoff = Math.min(100 * 2 ** (attempt - 1), 2000);
      await sleep(Math.min(retryAfterMs ?? backoff, 2000) + Math.floor(Math.random() * 100));
    }
    rec.gaveUp = !rec.accepted;
  }
}

// ---------------------------------------------------------------------------
// Socket clients
// ---------------------------------------------------------------------------

/**
 * One device of a user: a Socket.IO connection to one gateway at a time that fails over
 * to the next gateway in `gatewayUrls` when it drops, and recovers with `chat.sync`.
 * Every socket it opens is a "session" with its own event counts.
 */
export class FaultClient {
  constructor({ label, account, chatIds, gatewayUrls, gateway = 0 }) {
    this.label = label;
    this.account = account;
    this.userId = account.user.id;
    this.chatIds = chatIds;
    this.gatewayUrls = gatewayUrls;
    this.gateway = gateway;
    this.sessions = [];
    /** chatId -> Map(sequence -> {id, clientMessageId, content, senderId, via}) */
    this.have = new Map(chatIds.map((c) => [c, new Map()]));
    /** chatId -> Set(sequence) received live (new or saved) on any socket. */
    this.live = new Map(chatIds.map((c) => [c, new Set()]));
    /** Arrival time of every live message event (ms since epoch), in order. */
    this.liveTimes = [];
    this.conflicts = [];
    this.misrouted = [];
    this.syncs = { ok: 0, failed: 0, pages: 0, recovered: 0 };
    this.reconnects = [];
    this.connectErrors = 0;
    this.closing = false;
    this.reconnecting = null;
    this.lastEventAt = Date.now();
  }

  get current() { return this.sessions.at(-1); }
  get connected() { return Boolean(this.current?.socket.connected); }

  /** Highest sequence held in `chatId` with nothing missing below it. */
  contiguous(chatId) {
    const seqs = this.have.get(chatId);
    let k = 0;
    while (seqs.has(k + 1)) k++;
    return k;
  }

  hold(chatId, m, via) {
    const seqs = this.have.get(chatId);
    if (!seqs) {
      this.misrouted.push(`${via} for chat ${chatId} the user is not in`);
      return false;
    }
    const prev = seqs.get(m.sequence);
    if (prev) {
      if (prev.id !== m.id) this.conflicts.push(`chat ${chatId} seq ${m.sequence}: ${prev.id} (${prev.via}) vs ${m.id} (${via})`);
      return false;
    }
    seqs.set(m.sequence, { id: m.id, clientMessageId: m.clientMessageId, content: m.content, senderId: m.senderId, via });
    return true;
  }

  onMessageEvent(session, event, payload) {
    const m = payload?.message;
    const chatId = payload?.chatId;
    if (!m || typeof m.sequence !== 'number' || chatId !== m.chatId) {
      this.misrouted.push(`${event} with a bad payload: ${JSON.stringify(payload).slice(0, 200)}`);
      return;
    }
    const own = m.senderId === this.userId;
    if ((event === EVENTS.NEW && own) || (event === EVENTS.SAVED && !own)) {
      this.misrouted.push(`${event} on ${this.label} for a message ${own ? 'it' : 'someone else'} sent (chat ${chatId} seq ${m.sequence})`);
    }
    const counts = event === EVENTS.NEW ? session.newCount : session.savedCount;
    const n = (counts.get(m.id) ?? 0) + 1;
    counts.set(m.id, n);
    if (n === 1) {
      const last = session.lastSeq.get(chatId) ?? 0;
      if (m.sequence < last) session.outOfOrder.push(`chat ${chatId}: seq ${m.sequence} after ${last}`);
      session.lastSeq.set(chatId, Math.max(last, m.sequence));
    }
    this.live.get(chatId)?.add(m.sequence);
    this.liveTimes.push(Date.now());
    this.hold(chatId, m, event === EVENTS.NEW ? 'new' : 'saved');
    this.lastEventAt = Date.now();
  }

  /** Opens a socket to gateway `index`; resolves the session once connected. */
  openSession(index, timeoutMs = 5000) {
    const url = this.gatewayUrls[index];
    const socket = io(`${url}/chat`, {
      path: '/socket.io', transports: ['websocket'], auth: { token: this.account.accessToken },
      reconnection: false, forceNew: true, timeout: timeoutMs,
    });
    const session = {
      n: this.sessions.length + 1, gateway: index, socket, newCount: new Map(), savedCount: new Map(),
      lastSeq: new Map(), outOfOrder: [], openedAt: Date.now(), connectedAt: null, disconnect: null,
    };
    socket.onAny((event, payload) => {
      if (event === EVENTS.NEW || event === EVENTS.SAVED) this.onMessageEvent(session, event, payload);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no connect within ${timeoutMs} ms`)), timeoutMs + 500);
      const fail = (err) => {
        clearTimeout(timer);
        socket.off('connect', ok);
        socket.close();
        reject(err);
      };
      const ok = () => {
        clearTimeout(timer);
        socket.off('connect_error', fail);
        session.connectedAt = Date.now();
        this.sessions.push(session);
        this.gateway = index;
        socket.on('disconnect', (reason) => {
          session.disconnect = { reason, at: Date.now() };
          // Only the socket in use fails over (an older one closing late changes nothing).
          if (!this.closing && this.current === session) this.failover();
        });
        resolve(session);
      };
      socket.once('connect', ok);
      socket.once('connect_error', fail);
    });
  }

  /** First connection (to the configured gateway) and an initial sync. */
  async start() {
    await this.openSession(this.gateway);
    await this.sync('start');
  }

  /** Reconnects to the next gateway (rotating), then syncs. Bounded in attempts and time. */
  failover() {
    if (this.reconnecting) return this.reconnecting;
    const from = this.gateway;
    const startedAt = Date.now();
    this.reconnecting = (async () => {
      try {
        for (let attempt = 1; attempt <= 40 && !this.closing; attempt++) {
          await sleep(attempt === 1 ? 50 + Math.floor(Math.random() * 150) : Math.min(150 * attempt, 1500));
          const index = (from + attempt) % this.gatewayUrls.length;
          try {
            await this.openSession(index);
          } catch {
            this.connectErrors++;
            continue;
          }
          this.reconnects.push({ from, to: index, afterMs: Date.now() - startedAt });
          await this.sync('reconnect');
          return;
        }
      } finally {
        this.reconnecting = null;
      }
    })();
    return this.reconnecting;
  }

  /**
   * `chat.sync` from the contiguous high-water mark of every chat, paging while hasMore.
   * Retries error acks / timeouts (e.g. while PostgreSQL is down), bounded.
   */
  async sync(why, { attempts = 12 } = {}) {
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const session = this.current;
      if (!session?.socket.connected) return false;
      try {
        for (let page = 0; page < 50; page++) {
          const chats = Object.fromEntries(this.chatIds.map((c) => [c, this.contiguous(c)]));
          const ack = await session.socket.timeout(8000).emitWithAck('chat.sync', { chats });
          if (ack?.status !== 'ok' || !Array.isArray(ack.messages)) throw new Error(`chat.sync ack ${JSON.stringify(ack).slice(0, 200)}`);
          this.syncs.pages++;
          for (const m of ack.messages) {
            if (this.hold(m.chatId, m, `sync:${why}`)) this.syncs.recovered++;
          }
          if (!ack.hasMore) break;
        }
        this.syncs.ok++;
        return true;
      } catch {
        this.syncs.failed++;
        await sleep(Math.min(250 * attempt, 1500));
      }
    }
    return false;
  }

  /** Waits for a pending failover, then syncs once more (the end of a scenario). */
  async finalSync(timeoutMs = 30_000) {
    await eventually(() => this.connected && !this.reconnecting, timeoutMs, 100);
    return this.sync('final');
  }

  close() {
    this.closing = true;
    for (const s of this.sessions) s.socket.close();
  }
}

// ---------------------------------------------------------------------------
// Scenario: deployment, users, chats, clients, senders
// ---------------------------------------------------------------------------

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
 * instance (`instance`: 'redis' | 'postgres' | 'rabbitmq') started first, then a split
 * deployment on it (its own database, vhost, Redis prefix). Teardown always runs:
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
    if (instance) box.instance = await starters[instance]();
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
 * `senderChats` replaces which chats (titles) each sender writes to.
 */
export async function setupScenario(d, name, { senderOptions = {}, extraClients = [], senderChats = null } = {}) {
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
      chatIds: chatsOf(user).map((c) => c.id), gatewayUrls, gateway: gateway % gatewayUrls.length,
    });
  });
  await Promise.all(clients.map((c) => c.start()));

  const ledger = new Ledger();
  const plan = senderChats ?? { ana: ['g1', 'g3', 'dm'], cal: ['g1', 'g2'], eve: ['g2', 'g3'], fay: ['g2', 'g3', 'dm'] };
  const senders = Object.entries(plan).map(([user, titles]) => new Sender(d, acc[user], ledger, {
    label: user, chats: titles.map((t) => chats.find((c) => c.title === t)), ...(senderOptions[user] ?? {}),
  }));

  return new Scenario({ name, d, accounts: acc, chats, clients, senders, ledger });
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
   * robin over its chats at `rate` per second. Resolves when all are done (or the deadline).
   */
  stream({ perSender = faultSettings.perSender, rate = faultSettings.ratePerSender } = {}) {
    const deadline = Date.now() + faultSettings.streamDeadlineMs;
    const interval = 1000 / rate;
    this.mark('stream starts');
    this.streaming = Promise.all(this.senders.map(async (s, si) => {
      await sleep((si * interval) / this.senders.length);
      for (let i = 0; i < perSender && Date.now() < deadline; i++) {
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

  /** Resolves once `n` messages were accepted (or the stream ended). */
  async acceptedAtLeast(n, timeoutMs = 30_000) {
    const ok = await eventually(() => this.ledger.acceptedCount >= n || this.streamDone, timeoutMs, 20);
    assert.ok(ok, `the stream did not reach ${n} accepted messages in ${timeoutMs} ms (${this.ledger.acceptedCount})`);
  }

  /** The persisted rows of the deployment, oldest first per chat. */
  rows() {
    return this.d.sqlJson(`SELECT coalesce(json_agg(json_build_object(
        'id', id, 'chatId', chat_id, 'senderId', sender_id, 'clientMessageId', client_message_id,
        'content', content, 'sequence', sequence) ORDER BY chat_id, sequence), '[]') FROM messages`);
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
    await sleep(settings.quietMs);
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
  async report({ dlq: dlqOverride } = {}) {
    const rows = await this.rows();
    const chatRows = await this.d.sqlJson(`SELECT coalesce(json_agg(json_build_object('id', id, 'lastSequence', last_sequence)), '[]') FROM chats`);
    // The partitions drain and every one has a consumer again (bounded wait).
    let broker = await this.brokerState();
    const drained = (b) => b.partitions.every((q) => q.ready === 0 && q.consumers >= 1);
    for (let i = 0; i < 40 && !drained(broker); i++) {
      await sleep(250);
      broker = await this.brokerState();
    }
    const dlq = dlqOverride ?? broker.dlq;
    const dispositions = this.workerDispositions();
    const recs = this.ledger.all;
    const byCmid = new Map(recs.map((r) => [r.cmid, r]));
    const problems = [];
    const sample = (list, n = 5) => list.slice(0, n).join('; ') + (list.length > n ? ` (+${list.length - n} more)` : '');

    // --- persistence: exactly once, nothing unknown, nothing altered ---
    const rowsByCmid = new Map();
    for (const r of rows) rowsByCmid.set(r.clientMessageId, [...(rowsByCmid.get(r.clientMessageId) ?? []), r]);
    const dupRows = [...rowsByCmid.values()].filter((l) => l.length > 1);
    const extraRows = dupRows.reduce((n, l) => n + l.length - 1, 0);
    const accepted = recs.filter((r) => r.accepted);
    const missing = accepted.filter((r) => !rowsByCmid.has(r.cmid));
    const unknown = rows.filter((r) => !byCmid.has(r.clientMessageId));
    const altered = rows.filter((r) => {
      const rec = byCmid.get(r.clientMessageId);
      return rec && (rec.chatId !== r.chatId || rec.senderId !== r.senderId || rec.content !== r.content);
    });
    const persistedUnaccepted = rows.filter((r) => byCmid.get(r.clientMessageId) && !byCmid.get(r.clientMessageId).accepted);
    const retried = recs.filter((r) => r.n503 + r.n429 + r.netErrors > 0);
    const stuck = broker.partitions.filter((q) => q.ready !== 0 || q.consumers < 1);
    if (stuck.length) problems.push(`partition queues not drained or without a consumer 10 s after the stream: ${sample(stuck.map((q) => `${q.queue} ready=${q.ready} consumers=${q.consumers}`), 8)}`);
    if (extraRows) problems.push(`${extraRows} duplicate row(s): ${sample(dupRows.map((l) => `${l[0].clientMessageId} x${l.length} (seq ${l.map((r) => r.sequence).join(',')})`))}`);
    if (missing.length) problems.push(`${missing.length} accepted (202) message(s) not persisted: ${sample(missing.map((r) => `${r.sender} "${r.content}" ${r.cmid}`))}`);
    if (unknown.length) problems.push(`${unknown.length} persisted row(s) nobody sent: ${sample(unknown.map((r) => r.clientMessageId))}`);
    if (altered.length) problems.push(`${altered.length} row(s) differ from what was sent: ${sample(altered.map((r) => `${r.clientMessageId} "${r.content}"`))}`);

    // --- the senders' view ---
    const gaveUp = recs.filter((r) => !r.accepted);
    const unexpected = recs.flatMap((r) => r.unexpected.map((u) => `${r.sender} "${r.content}": ${u}`));
    const badAccepts = recs.flatMap((r) => r.badAccepts);
    if (gaveUp.length) problems.push(`${gaveUp.length} message(s) never got a 202 within ${faultSettings.maxAttempts} attempts / ${faultSettings.messageDeadlineMs} ms: ${sample(gaveUp.map((r) => `${r.sender} "${r.content}" (503 x${r.n503}, network errors x${r.netErrors})`))}`);
    if (unexpected.length) problems.push(`${unexpected.length} unexpected API answer(s): ${sample(unexpected)}`);
    if (badAccepts.length) problems.push(`${badAccepts.length} 202 bodies without the clientMessageId/brokerMessageId: ${sample(badAccepts)}`);

    // --- sequences: 1..n per chat, lastSequence = n ---
    let gaps = 0;
    const gapDetails = [];
    const rowsByChat = new Map();
    for (const r of rows) rowsByChat.set(r.chatId, [...(rowsByChat.get(r.chatId) ?? []), r]);
    for (const chat of this.chats) {
      const seqs = (rowsByChat.get(chat.id) ?? []).map((r) => r.sequence).sort((a, b) => a - b);
      const n = seqs.length;
      const distinct = new Set(seqs);
      const max = n ? seqs[n - 1] : 0;
      const missingSeqs = [];
      for (let s = 1; s <= max; s++) if (!distinct.has(s)) missingSeqs.push(s);
      const repeats = n - distinct.size;
      const last = chatRows.find((c) => c.id === chat.id)?.lastSequence ?? 0;
      const bad = missingSeqs.length + repeats + (last !== max ? 1 : 0);
      if (bad) {
        gaps += bad;
        gapDetails.push(`${chat.title}: missing [${missingSeqs.slice(0, 10).join(',')}] repeats ${repeats} lastSequence ${last} vs max ${max}`);
      }
    }
    if (gaps) problems.push(`sequence gaps/repeats: ${gapDetails.join('; ')}`);

    // --- per-chat order of each sender's messages (a sender waits for each 202) ---
    const orderViolations = [];
    const rowOf = (rec) => rowsByCmid.get(rec.cmid)?.[0];
    const streams = new Map();
    for (const rec of [...recs].sort((a, b) => a.index - b.index)) {
      const key = `${rec.sender} ${rec.chatId}`;
      streams.set(key, [...(streams.get(key) ?? []), rec]);
    }
    for (const list of streams.values()) {
      let last = 0;
      let lastRec = null;
      for (const rec of list) {
        const row = rowOf(rec);
        if (!row) continue;
        if (row.sequence <= last) orderViolations.push(`"${rec.content}" got seq ${row.sequence} after "${lastRec.content}" seq ${last}`);
        last = Math.max(last, row.sequence);
        lastRec = rec;
      }
    }
    if (orderViolations.length) problems.push(`${orderViolations.length} message(s) persisted out of send order: ${sample(orderViolations)}`);

    // --- delivery to every connected participant, once per socket ---
    const rowsById = new Map(rows.map((r) => [r.id, r]));
    const undelivered = [];
    const notEveryone = new Set();
    let liveMissed = 0;
    const liveMissedList = [];
    let newDuplicates = 0;
    let savedDuplicates = 0;
    const dupDetails = [];
    const clientProblems = [];
    for (const c of this.clients) {
      const live = c.live; // everything that ever arrived live, up to now
      for (const chatId of c.chatIds) {
        for (const r of rowsByChat.get(chatId) ?? []) {
          const got = c.have.get(chatId).get(r.sequence);
          if (!got || got.id !== r.id || got.content !== r.content || got.clientMessageId !== r.clientMessageId) {
            undelivered.push(`${c.label} lacks ${this.chatTitle(chatId)} seq ${r.sequence}${got ? ` (holds ${got.id} instead of ${r.id})` : ''}`);
            notEveryone.add(r.id);
          }
          if (!live.get(chatId)?.has(r.sequence)) {
            liveMissed++;
            liveMissedList.push(`${c.label} ${this.chatTitle(chatId)}#${r.sequence}`);
          }
        }
        for (const [seq, got] of c.have.get(chatId)) {
          const r = rowsById.get(got.id);
          if (!r || r.sequence !== seq) clientProblems.push(`${c.label} holds ${this.chatTitle(chatId)} seq ${seq} = ${got.id}, not persisted as such`);
        }
      }
      for (const s of c.sessions) {
        for (const [id, n] of s.newCount) {
          if (n > 1) {
            newDuplicates += n - 1;
            const r = rowsById.get(id);
            dupDetails.push(`${c.label} socket ${s.n} got ${EVENTS.NEW} x${n} for ${r ? `${this.chatTitle(r.chatId)} seq ${r.sequence}` : id}`);
          }
        }
        for (const n of s.savedCount.values()) if (n > 1) savedDuplicates += n - 1;
        for (const o of s.outOfOrder) clientProblems.push(`${c.label} socket ${s.n} out of order: ${o}`);
      }
      for (const x of c.conflicts) clientProblems.push(`${c.label} conflicting copies: ${x}`);
      for (const x of c.misrouted) clientProblems.push(`${c.label}: ${x}`);
    }
    const delivered = rows.filter((r) => !notEveryone.has(r.id)).length;
    if (undelivered.length) problems.push(`${undelivered.length} (client, message) pair(s) never delivered, even after chat.sync: ${sample(undelivered, 8)}`);
    if (newDuplicates) problems.push(`${newDuplicates} duplicate ${EVENTS.NEW} on one socket: ${sample(dupDetails)}`);
    if (clientProblems.length) problems.push(`${clientProblems.length} client-side inconsistencies: ${sample(clientProblems)}`);

    const duplicates = extraRows + newDuplicates;
    const totals = (f) => this.clients.reduce((n, c) => n + f(c), 0);
    const latencies = recs.flatMap((r) => r.requestMs).sort((a, b) => a - b);
    const pct = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : 0);
    const report = {
      scenario: this.name,
      sent: recs.length,
      accepted: accepted.length,
      persisted: rows.length,
      delivered,
      duplicates,
      gaps,
      dlq,
      posts: recs.reduce((n, r) => n + r.posts, 0),
      attempts: recs.reduce((n, r) => n + r.attempts, 0),
      status503: recs.reduce((n, r) => n + r.n503, 0),
      status429: recs.reduce((n, r) => n + r.n429, 0),
      networkErrors: recs.reduce((n, r) => n + r.netErrors, 0),
      retriedMessages: retried.length,
      retriedPersistedOnce: retried.filter((r) => (rowsByCmid.get(r.cmid)?.length ?? 0) === 1).length,
      persistedUnaccepted: persistedUnaccepted.length,
      liveMissed,
      liveMissedSample: liveMissedList.slice(0, 12),
      liveMissedByClient: Object.fromEntries(this.clients
        .map((c) => [c.label, liveMissedList.filter((x) => x.startsWith(`${c.label} `)).length])
        .filter(([, n]) => n > 0)),
      savedDuplicates,
      syncRecovered: totals((c) => c.syncs.recovered),
      syncFailures: totals((c) => c.syncs.failed),
      reconnects: totals((c) => c.reconnects.length),
      requestMs: { p50: pct(0.5), p99: pct(0.99), max: latencies.at(-1) ?? 0 },
      workerRetried: dispositions.retried,
      workerDeadLettered: dispositions.deadLettered,
      readyz503MaxMs: this.readyz
        ? Math.max(0, ...Object.values(this.readyz).flatMap((r) => r.non200.map((x) => x.ms))) : null,
      problems,
      elapsedMs: Date.now() - this.t0,
    };
    process.stdout.write(`fault-summary scenario=${report.scenario} sent=${report.sent} accepted=${report.accepted} `
      + `persisted=${report.persisted} delivered=${report.delivered} duplicates=${report.duplicates} `
      + `gaps=${report.gaps} dlq=${report.dlq}\n`);
    process.stdout.write(`fault-detail scenario=${report.scenario} posts=${report.posts} attempts=${report.attempts} `
      + `status503=${report.status503} status429=${report.status429} networkErrors=${report.networkErrors} retried=${report.retriedMessages} `
      + `retriedPersistedOnce=${report.retriedPersistedOnce} persistedUnaccepted=${report.persistedUnaccepted} `
      + `liveMissed=${report.liveMissed} syncRecovered=${report.syncRecovered} syncFailures=${report.syncFailures} `
      + `reconnects=${report.reconnects} savedDuplicates=${report.savedDuplicates} `
      + `workerRetried=${report.workerRetried} workerDeadLettered=${report.workerDeadLettered} `
      + `requestMsP50=${report.requestMs.p50} requestMsP99=${report.requestMs.p99} requestMsMax=${report.requestMs.max} `
      + `${report.readyz503MaxMs === null ? '' : `readyz503MaxMs=${report.readyz503MaxMs} `}elapsedMs=${report.elapsedMs} `
      + `marks=${JSON.stringify(this.marks.map((m) => `+${m.at}:${m.what}`))}\n`);
    this.lastReport = report;
    return report;
  }

  chatTitle(chatId) { return this.chats.find((c) => c.id === chatId)?.title ?? chatId; }

  /**
   * Fails with every broken promise at once: exactly-once persistence of every 202, no
   * unknown rows, gap-free sequences, per-sender order, delivery to every connected
   * participant, no duplicate `chat.message.new` on a socket, the expected DLQ count.
   * `liveComplete`: also require that every message arrived live (no chat.sync needed),
   * for faults that leave Redis pub/sub and the gateways alone.
   */
  assertReport(report, { dlq = 0, liveComplete = false } = {}) {
    const problems = [...report.problems];
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

// ---------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------

/**
 * Polls GET /readyz of `targets` ({name, url}) every `intervalMs` until `stop()`,
 * which resolves {name: {polls, non200: [{status, body, ms}], errors}}.
 */
export function watchReadyz(targets, intervalMs = 200) {
  const seen = Object.fromEntries(targets.map((t) => [t.name, { polls: 0, non200: [], errors: 0 }]));
  let stopped = false;
  const loops = targets.map(async (t) => {
    while (!stopped) {
      const rec = seen[t.name];
      rec.polls++;
      const started = Date.now();
      try {
        const res = await fetch(`${t.url}/readyz`, { signal: AbortSignal.timeout(6000) });
        const body = await res.text();
        if (res.status !== 200) rec.non200.push({ status: res.status, body: body.slice(0, 300), ms: Date.now() - started });
      } catch {
        rec.errors++;
      }
      await sleep(intervalMs);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return seen;
    },
  };
}

/** Whether a readyz record saw a 503 naming `dependency`. */
export const namedInReadyz = (rec, dependency) =>
  rec.non200.some((r) => r.status === 503 && r.body.includes(dependency));

/** Waits until every process of the deployment that is running answers /readyz 200. */
export async function allReady(d, timeoutMs = 40_000) {
  const procs = d.processes.filter((p) => p.running);
  const ok = await eventually(async () => {
    const answers = await Promise.all(procs.map((p) => fetch(`${p.healthUrl}/readyz`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.status).catch(() => 0)));
    return answers.every((s) => s === 200);
  }, timeoutMs, 250);
  assert.ok(ok, `not every process is ready again ${timeoutMs} ms after the fault`);
}

/** Runs `fn(connection)` on an AMQP connection to the deployment's broker and vhost. */
export async function withAmqp(d, fn) {
  const ep = d.infra.endpoints;
  const url = `amqp://${encodeURIComponent(ep.rabbitUser)}:${encodeURIComponent(ep.rabbitPassword)}@${ep.rabbitHost}:${ep.rabbitPort}/${encodeURIComponent(d.vhost)}`;
  const conn = await amqplib.connect(url);
  conn.on('error', () => {});
  try {
    return await fn(conn);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Reads the Redis routing state of gateway `gatewayId` under the deployment's prefix. */
export async function gatewayRoutingState(d, gatewayId, userIds) {
  const p = d.redisPrefix;
  const cli = (args) => d.infra.redisCli(args).then((r) => r.stdout.trim());
  const score = await cli(['ZSCORE', `${p}gateways`, gatewayId]);
  const sockets = Number(await cli(['SCARD', `${p}gateway:${gatewayId}:sockets`]));
  let userEntries = 0;
  for (const u of userIds) {
    const vals = (await cli(['HVALS', `${p}user:${u}:sockets`])).split('\n').filter(Boolean);
    userEntries += vals.filter((g) => g === gatewayId).length;
  }
  return { registered: score !== '', sockets, userEntries };
}

/**
 * Takes `inst` (an instances.mjs instance) down for `downMs` mid-stream and back up,
 * watching /readyz of `watch` (process names) meanwhile; waits until every process is
 * ready again. Resolves the readyz observations per process. With `until` (a predicate),
 * the service stays down past `downMs` until it holds, for at most `maxDownMs`: a fault
 * sized by what happened during it (e.g. a backlog of N messages) rather than by time,
 * so a slow machine gets the same fault as a fast one.
 */
export async function outage(s, inst, { downMs = faultSettings.downMs, until = null, maxDownMs = 20_000, watch }) {
  const targets = watch.map((name) => ({ name, url: s.d.process(name).healthUrl }));
  const watcher = watchReadyz(targets);
  await sleep(100);
  s.mark(`${inst.kind} down`);
  try {
    await inst.down();
    s.downAt = Date.now();
    await sleep(downMs);
    if (until && !(await eventually(until, Math.max(0, maxDownMs - downMs), 50))) {
      s.mark(`${inst.kind} stayed down ${maxDownMs} ms without the condition`);
    }
  } finally {
    await inst.up();
    s.upAt = Date.now();
    s.mark(`${inst.kind} up`);
  }
  try {
    await allReady(s.d);
    s.mark('every process ready again');
  } finally {
    s.readyz = await watcher.stop();
  }
  return s.readyz;
}

/** Asserts that /readyz of each of `names` answered 503 naming `dependency` during the outage. */
export function assertReadyzNamed(s, names, dependency) {
  const silent = names.filter((n) => !namedInReadyz(s.readyz[n], dependency));
  assert.deepEqual(silent, [], `/readyz did not answer 503 naming ${dependency} during the outage: `
    + silent.map((n) => `${n} ${JSON.stringify({ ...s.readyz[n], non200: s.readyz[n].non200.slice(0, 3) })}`).join('; '));
}
