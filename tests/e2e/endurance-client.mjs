// Endurance runs (soak, chaos), the clients: one device of a user, as a real app
// behaves. It holds one Socket.IO connection at a time, fails over to the next gateway
// when it drops, reconnects with auth.offset (contract "Recovery and offsets"), and
// calls `chat.sync` only when the server answers `session.recovered {recovered: false}`.
// Optionally it marks its chats read and types now and then.
//
// Hours of traffic must fit in memory: per chat it keeps three arrays indexed by
// sequence (a 30-bit hash of the message id, the first arrival time, the live
// receptions), nothing per message beyond that.

import { io } from 'socket.io-client';

import { offsetAfter, whenConnected } from './fault-client.mjs';
import { sleep } from './harness.mjs';

const NEW = 'chat.message.new';
const SAVED = 'chat.message.saved';
const RECOVERED = 'session.recovered';
/** FNV-1a of a string, 30 bits (stays a small integer in V8 arrays). */
export function idHash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h & 0x3fffffff;
}

/** What one device holds of one chat, by sequence. */
class ChatTrack {
  constructor() {
    this.hash = [];
    /** First arrival over a socket (live or replayed), ms since the run's t0. */
    this.firstAt = [];
    /** How many times it arrived over a socket (more than 1: a duplicate). */
    this.live = [];
    /** Highest sequence with nothing missing below it. */
    this.contig = 0;
  }

  advance() {
    while (this.hash[this.contig + 1] !== undefined) this.contig++;
  }
}

export class EnduranceClient {
  /**
   * @param {object} o
   * @param {string} o.label e.g. "u3#1"
   * @param {{user: {id: string}, accessToken: string}} o.account
   * @param {string[]} o.chatIds the chats of the user
   * @param {string[]} o.gatewayUrls every gateway; it starts on `gateway` and rotates
   * @param {number} o.t0 the run's start (ms since epoch)
   * @param {string[]} [o.transports] socket.io-client transports
   * @param {boolean} [o.interact] mark read every 2 s and type every 5 s
   */
  constructor({ label, account, chatIds, gatewayUrls, gateway = 0, t0, transports = ['websocket'], interact = false }) {
    Object.assign(this, { label, account, chatIds, gatewayUrls, gateway, t0, transports, interact });
    this.userId = account.user.id;
    this.chats = new Map(chatIds.map((c) => [c, new ChatTrack()]));
    this.offset = null;
    this.socket = null;
    this.sessions = 0;
    this.closing = false;
    this.reconnecting = null;
    this.lastEventAt = Date.now();
    this.stats = {
      events: 0, duplicates: 0, outOfOrder: 0, misrouted: 0, conflicts: 0, reconnects: 0, connectErrors: 0,
      recovered: 0, refused: 0, syncCalls: 0, syncFailures: 0, synced: 0, reads: 0, typing: 0, ackErrors: 0, ackInterrupted: 0, bounces: 0,
    };
    this.samples = [];
    this.readMarks = new Map();
  }

  get connected() { return Boolean(this.socket?.connected); }

  note(what) { if (this.samples.length < 20) this.samples.push(`${this.label}: ${what}`); }

  onMessage(session, payload) {
    const m = payload?.message;
    const track = this.chats.get(payload?.chatId);
    if (!m || !track || typeof m.sequence !== 'number' || m.chatId !== payload.chatId) {
      this.stats.misrouted++;
      this.note(`unexpected message event ${JSON.stringify(payload).slice(0, 160)}`);
      return;
    }
    const seq = m.sequence;
    const last = session.lastSeq.get(m.chatId) ?? 0;
    if (seq < last) {
      this.stats.outOfOrder++;
      this.note(`socket ${session.n}: chat ${m.chatId} seq ${seq} after ${last}`);
    }
    session.lastSeq.set(m.chatId, Math.max(last, seq));
    const h = idHash(m.id);
    const n = (track.live[seq] ?? 0) + 1;
    track.live[seq] = n;
    if (n > 1) {
      this.stats.duplicates++;
      this.note(`chat ${m.chatId} seq ${seq} arrived ${n} times (socket ${session.n})`);
    }
    if (track.firstAt[seq] === undefined) track.firstAt[seq] = Date.now() - this.t0;
    this.hold(track, seq, h);
    this.stats.events++;
    this.lastEventAt = Date.now();
  }

  hold(track, seq, h) {
    const prev = track.hash[seq];
    if (prev === undefined) {
      track.hash[seq] = h;
      track.advance();
      return true;
    }
    if (prev !== h) {
      this.stats.conflicts++;
      this.note(`two different messages with one sequence ${seq}`);
    }
    return false;
  }

  /** Opens a socket to gateway `index` with auth.offset; resolves once connected. */
  open(index, timeoutMs = 5000) {
    const socket = io(`${this.gatewayUrls[index]}/chat`, {
      path: '/socket.io', transports: this.transports,
      auth: { token: this.account.accessToken, ...(this.offset ? { offset: this.offset } : {}) },
      reconnection: false, forceNew: true, timeout: timeoutMs,
    });
    const session = { n: ++this.sessions, lastSeq: new Map(), hadOffset: Boolean(this.offset) };
    socket.onAny((event, payload) => {
      if (typeof payload?.offset === 'string' && offsetAfter(payload.offset, this.offset)) this.offset = payload.offset;
      if (event === NEW || event === SAVED) this.onMessage(session, payload);
      else if (event === RECOVERED) this.onRecovered(session, payload);
    });
    return whenConnected(socket, timeoutMs).then(() => {
      this.socket = socket;
      this.gateway = index;
      socket.on('disconnect', () => {
        if (!this.closing && this.socket === socket) this.failover();
      });
      return session;
    });
  }

  onRecovered(session, payload) {
    if (payload?.recovered === true) {
      this.stats.recovered++;
      return;
    }
    // A fresh start, or an offset the server no longer has: reload with chat.sync.
    if (session.hadOffset) this.stats.refused++;
    this.sync().catch(() => {});
  }

  async start() {
    await this.open(this.gateway);
    if (this.interact) this.interactions = this.interactLoop();
  }

  /** Reconnects, rotating over the gateways, with a growing pause (bounded). */
  failover() {
    if (this.reconnecting) return this.reconnecting;
    const from = this.gateway;
    this.reconnecting = (async () => {
      try {
        for (let attempt = 1; attempt <= 200 && !this.closing; attempt++) {
          await sleep(attempt === 1 ? 50 + Math.floor(Math.random() * 150) : Math.min(100 * attempt, 1000));
          const index = (from + attempt) % this.gatewayUrls.length;
          try {
            await this.open(index);
            this.stats.reconnects++;
            return;
          } catch {
            this.stats.connectErrors++;
          }
        }
      } finally {
        this.reconnecting = null;
      }
    })();
    return this.reconnecting;
  }

  /** An app sent to the background and back: the socket closes, a new one resumes by offset. */
  bounce() {
    if (!this.connected || this.reconnecting) return;
    this.stats.bounces++;
    this.socket.disconnect();
  }

  /** `chat.sync` from each chat's contiguous mark, paging while hasMore; retried (bounded). */
  async sync() {
    for (let attempt = 1; attempt <= 20 && !this.closing; attempt++) {
      const socket = this.socket;
      if (!socket?.connected) return false;
      this.stats.syncCalls++;
      try {
        for (let page = 0; page < 1000; page++) {
          const chats = Object.fromEntries([...this.chats].map(([id, t]) => [id, t.contig]));
          const ack = await socket.timeout(8000).emitWithAck('chat.sync', { chats });
          if (ack?.status !== 'ok' || !Array.isArray(ack.messages)) throw new Error(JSON.stringify(ack).slice(0, 200));
          for (const m of ack.messages) {
            const track = this.chats.get(m.chatId);
            if (track && this.hold(track, m.sequence, idHash(m.id))) this.stats.synced++;
          }
          if (!ack.hasMore) return true;
        }
        return true;
      } catch {
        this.stats.syncFailures++;
        await sleep(Math.min(250 * attempt, 2000));
      }
    }
    return false;
  }

  /** Marks each chat read up to what it holds every 2 s, and types in one chat every 5 s. */
  async interactLoop() {
    let tick = 0;
    while (!this.closing) {
      await sleep(2000 + Math.floor(Math.random() * 200));
      if (!this.connected) continue;
      tick++;
      for (const [chatId, t] of this.chats) {
        if (t.contig > (this.readMarks.get(chatId) ?? 0)) {
          this.readMarks.set(chatId, t.contig);
          this.ack('chat.read', { chatId, sequence: t.contig }, 'reads');
        }
      }
      if (tick % 3 === 0) {
        const chatId = this.chatIds[tick % this.chatIds.length];
        this.ack('chat.typing', { chatId, isTyping: true }, 'typing');
      }
    }
  }

  /**
   * Emits with an ack. An ack that never came because this socket closed meanwhile (a
   * bounce, or a fault) is `ackInterrupted`, not an error: socket.io-client rejects the
   * acks in flight when its socket disconnects.
   */
  ack(event, payload, counter) {
    this.stats[counter]++;
    const socket = this.socket;
    socket.timeout(8000).emitWithAck(event, payload)
      .then((a) => { if (a?.status !== 'ok') this.stats.ackErrors++; })
      .catch(() => { if (socket.connected) this.stats.ackErrors++; else this.stats.ackInterrupted++; });
  }

  close() {
    this.closing = true;
    this.socket?.close();
  }
}
