// Endurance runs, the senders: one "lane" per (sender, chat), each a device posting
// `POST /chats/:chatId/messages` one at a time on a fixed schedule (late: at once), and
// retrying a 503, a 429 or a network error with the same clientMessageId, as a real
// app does. The ledger is compact: the clientMessageId and the content are functions
// of (run, lane, k), so a lane keeps only when each message was accepted.

import { randomBytes } from 'node:crypto';
import http from 'node:http';

import { httpRequest } from './fault-common.mjs';
import { sleep } from './harness.mjs';

const PENDING = 0;
const ACCEPTED = 1;
const GAVE_UP = 2;
const REFUSED = 3;

/** A message that found no 202 within this long is given up (counted: it should never happen). */
const GIVE_UP_MS = 180_000;

export class Lanes {
  /**
   * @param {string} apiUrl
   * @param {{chat: {id: string, title: string}, account: object}[]} specs one per lane
   * @param {number} t0 the run's start (ms since epoch)
   */
  constructor(apiUrl, specs, t0) {
    this.apiUrl = apiUrl;
    this.t0 = t0;
    this.tag = randomBytes(4).toString('hex');
    this.lanes = specs.map((s, i) => ({
      i, chat: s.chat, account: s.account, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
      state: [], acceptedAt: [], issued: 0,
    }));
    this.totals = { attempts: 0, s503: 0, s429: 0, network: 0, unexpected: 0 };
    /** When a send was refused (503, 429) or failed on the network, ms since t0 (bounded). */
    this.failedAt = [];
    this.samples = [];
    this.stopAt = 0;
  }

  /** The clientMessageId of message `k` of lane `lane`: a UUID that encodes both. */
  cmid(lane, k) {
    return `${this.tag}-${lane.toString(16).padStart(4, '0')}-4000-8000-${k.toString(16).padStart(12, '0')}`;
  }

  content(lane, k) { return `endurance lane ${lane} #${k}`; }

  /** [lane, k] of a clientMessageId of this run, or null. */
  decode(cmid) {
    const p = cmid.split('-');
    if (p.length !== 5 || p[0] !== this.tag) return null;
    const lane = Number.parseInt(p[1], 16);
    const k = Number.parseInt(p[4], 16);
    return lane < this.lanes.length && k < this.lanes[lane].issued ? [lane, k] : null;
  }

  /** Runs every lane at `rate` messages/s in total until `durationMs` has passed. */
  run(rate, durationMs) {
    const start = Date.now();
    this.stopAt = start + durationMs;
    const interval = (1000 * this.lanes.length) / rate;
    return Promise.all(this.lanes.map(async (lane) => {
      for (let k = 0; ; k++) {
        const due = start + (lane.i / this.lanes.length) * interval + k * interval;
        if (due >= this.stopAt) return;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        await this.send(lane, k);
      }
    }));
  }

  async send(lane, k) {
    lane.issued = k + 1;
    lane.state[k] = PENDING;
    const body = { content: this.content(lane.i, k), clientMessageId: this.cmid(lane.i, k) };
    const deadline = Date.now() + GIVE_UP_MS;
    for (let attempt = 1; ; attempt++) {
      this.totals.attempts++;
      let pauseMs = Math.min(50 * 2 ** (attempt - 1), 1000);
      try {
        const res = await httpRequest(this.apiUrl, 'POST', `/chats/${lane.chat.id}/messages`, {
          token: lane.account.accessToken, agent: lane.agent, body, timeoutMs: 10_000,
        });
        if (res.status === 202) {
          lane.state[k] = ACCEPTED;
          lane.acceptedAt[k] = Date.now() - this.t0;
          return;
        }
        if (res.status !== 503 && res.status !== 429) {
          lane.state[k] = REFUSED;
          this.totals.unexpected++;
          if (this.samples.length < 10) this.samples.push(`lane ${lane.i} #${k}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
          return;
        }
        this.totals[res.status === 503 ? 's503' : 's429']++;
        this.failure();
        const ra = Number.parseFloat(res.headers['retry-after'] ?? '');
        if (Number.isFinite(ra)) pauseMs = Math.min(ra * 1000, 1000);
      } catch {
        this.totals.network++;
        this.failure();
      }
      if (Date.now() >= deadline) {
        lane.state[k] = GAVE_UP;
        return;
      }
      await sleep(pauseMs + Math.floor(Math.random() * 50));
    }
  }

  failure() {
    if (this.failedAt.length < 1_000_000) this.failedAt.push(Date.now() - this.t0);
  }

  /** Counts over every lane: issued, accepted, given up, refused. */
  counts() {
    const c = { sent: 0, accepted: 0, gaveUp: 0, refused: 0, pending: 0 };
    for (const lane of this.lanes) {
      c.sent += lane.issued;
      for (let k = 0; k < lane.issued; k++) {
        const s = lane.state[k];
        if (s === ACCEPTED) c.accepted++;
        else if (s === GAVE_UP) c.gaveUp++;
        else if (s === REFUSED) c.refused++;
        else c.pending++;
      }
    }
    return c;
  }

  accepted(lane, k) { return this.lanes[lane].state[k] === ACCEPTED; }

  close() { for (const lane of this.lanes) lane.agent.destroy(); }
}
