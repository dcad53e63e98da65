// Fault-injection toolkit, socket clients: `FaultClient`, one device of a user that
// records every message event per socket, fails over to the next gateway when its
// socket drops, and recovers with `chat.sync` (recovery 'sync') or, with recovery
// 'offset', only with the handshake's auth.offset (contract "Recovery and offsets").

import { io } from 'socket.io-client';

import { EVENTS } from './contract.mjs';
import { eventually } from './fault-common.mjs';
import { sleep } from './harness.mjs';

const RECOVERED = 'session.recovered';
const OFFSET_RE = /^(?:(\d+):)?(\d+)-(\d+)$/;
/**
 * Whether offset `a` is after offset `b` ("<ms>-<n>" or "<epoch>:<ms>-<n>", numerically;
 * null is before all; an offset of another Redis epoch replaces the older one).
 */
export function offsetAfter(a, b) {
  if (b == null) return true;
  const [, ae = '0', am, an] = OFFSET_RE.exec(a) ?? [];
  const [, be = '0', bm, bn] = OFFSET_RE.exec(b) ?? [];
  if (am === undefined || bm === undefined) return false;
  if (ae !== be) return true;
  return BigInt(am) !== BigInt(bm) ? BigInt(am) > BigInt(bm) : BigInt(an) > BigInt(bn);
}

/**
 * Resolves once `socket` connects; on `connect_error` or after `timeoutMs` (+0.5 s) it
 * closes the socket and rejects.
 */
export function whenConnected(socket, timeoutMs) {
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
      resolve();
    };
    socket.once('connect', ok);
    socket.once('connect_error', fail);
  });
}

/**
 * One device of a user: a Socket.IO connection to one gateway at a time that fails over
 * to the next gateway in `gatewayUrls` when it drops. Every socket it opens is a "session"
 * with its own event counts. `recovery`:
 *  - 'sync': syncs at start, after a reconnect and at the end (`chat.sync` from the
 *    contiguous high-water mark of each chat);
 *  - 'offset': never calls `chat.sync`; it reconnects with auth.offset = the last offset it
 *    saw, so what it holds is exactly what the server delivered over its sockets.
 */
export class FaultClient {
  constructor({ label, account, chatIds, gatewayUrls, gateway = 0, recovery = 'sync' }) {
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
    this.recovery = recovery;
    /** Highest offset seen (recoverable events and session.recovered), for auth.offset. */
    this.offset = null;
    /** `${chatId}:${sequence}` -> when it first arrived live (ms since epoch). */
    this.firstLive = new Map();
    /** `${chatId}:${sequence}` -> numbers of the sessions it arrived on. */
    this.sessionsOf = new Map();
    /** Reconnects whose session.recovered said recovered: false (offset mode). */
    this.recoveryRefused = [];
    /** Ids of the chats a `chat.updated` was about (the markers of `barrier`). */
    this.chatUpdates = new Set();
  }

  /** For `barrier` (barrier.mjs). */
  get token() { return this.account.accessToken; }

  /** Whether a `chat.updated` about `chatId` arrived (a `barrier` marker). */
  sawChatUpdate(chatId) { return this.chatUpdates.has(chatId); }

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
    const key = `${chatId}:${m.sequence}`;
    if (!this.firstLive.has(key)) this.firstLive.set(key, Date.now());
    const on = this.sessionsOf.get(key) ?? new Set();
    on.add(session.n);
    this.sessionsOf.set(key, on);
    this.hold(chatId, m, event === EVENTS.NEW ? 'new' : 'saved');
    this.lastEventAt = Date.now();
  }

  /** Opens a socket to gateway `index` (with auth.offset in offset mode); resolves the session once connected. */
  openSession(index, timeoutMs = 5000) {
    const url = this.gatewayUrls[index];
    const offset = this.recovery === 'offset' ? this.offset : null;
    const socket = io(`${url}/chat`, {
      path: '/socket.io', transports: ['websocket'],
      auth: { token: this.account.accessToken, ...(offset ? { offset } : {}) },
      reconnection: false, forceNew: true, timeout: timeoutMs,
    });
    const session = {
      n: this.sessions.length + 1, gateway: index, socket, newCount: new Map(), savedCount: new Map(),
      lastSeq: new Map(), outOfOrder: [], openedAt: Date.now(), connectedAt: null, disconnect: null,
      offsetGiven: offset, recovered: null, replayed: 0,
    };
    socket.onAny((event, payload) => {
      if (typeof payload?.offset === 'string' && (event === RECOVERED || Object.values(EVENTS).includes(event))
        && offsetAfter(payload.offset, this.offset)) {
        this.offset = payload.offset;
      }
      if (event === 'chat.updated' && payload?.chat?.id) this.chatUpdates.add(payload.chat.id);
      if (event === RECOVERED) {
        const again = session.recovered !== null;
        session.recovered = payload;
        if (offset && payload?.recovered !== true) this.recoveryRefused.push(`session ${session.n}: ${JSON.stringify(payload)} for ${offset}`);
        // Mid-connection (Redis failed over to a new epoch): a correct client re-syncs.
        if (again && payload?.recovered === false) {
          this.epochResyncs = (this.epochResyncs ?? 0) + 1;
          if (this.recovery === 'sync') this.sync('epoch').catch(() => { /* the final sync covers it */ });
        }
      } else if (event === EVENTS.NEW || event === EVENTS.SAVED) {
        if (!session.recovered) session.replayed++;
        this.onMessageEvent(session, event, payload);
      }
    });
    return whenConnected(socket, timeoutMs).then(() => {
      session.connectedAt = Date.now();
      this.sessions.push(session);
      this.gateway = index;
      socket.on('disconnect', (reason) => {
        session.disconnect = { reason, at: Date.now() };
        // Only the socket in use fails over (an older one closing late changes nothing).
        if (!this.closing && this.current === session) this.failover();
      });
      return session;
    });
  }

  /** First connection (to the configured gateway) and, in sync mode, an initial sync. */
  async start() {
    await this.openSession(this.gateway);
    if (this.recovery === 'sync') await this.sync('start');
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
          if (this.recovery === 'sync') await this.sync('reconnect');
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

  /** Waits for a pending failover, then (sync mode) syncs once more: the end of a scenario. */
  async finalSync(timeoutMs = 30_000) {
    await eventually(() => this.connected && !this.reconnecting, timeoutMs, 100);
    return this.recovery === 'sync' ? this.sync('final') : true;
  }

  close() {
    this.closing = true;
    for (const s of this.sessions) s.socket.close();
  }
}
