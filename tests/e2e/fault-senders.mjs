// Fault-injection toolkit, senders: the `Ledger` of what was tried (one record per
// clientMessageId) and the `Sender`, which POSTs messages and retries a 503 / 429 /
// network error with the same clientMessageId.

import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { faultSettings, httpRequest } from './fault-common.mjs';
import { sleep } from './harness.mjs';

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
        n503: 0, refusedAt: [], n429: 0, netErrors: 0, unexpected: [], badAccepts: [], gaveUp: false, brokerIds: [], requestMs: [],
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
          rec.refusedAt.push(started); // when the refused attempt was made
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
