// The outbox: optimistic sends. Each send gets a clientMessageId, shows at once in the store,
// and is POSTed (in order per chat) until the server answers 202, retrying 503, 429 and
// network errors with the same id; other 4xx fail it (retry() re-queues). Its state then
// follows the saved message: sent (chat.message.saved), delivered, read. Unsent entries are
// kept in an OutboxStorage and re-sent with their ids after a reload.

import { Backoff, delay, type BackoffOptions } from './backoff.js';
import { CourierError } from './errors.js';
import type { StoredEntry, OutboxStorage } from './storage.js';
import type { Store } from './store.js';
import type { Message, OutboxState, PendingMessage } from './types.js';

export interface SendInput { content: string; replyToId?: string | null; attachments?: string[] }

export interface OutboxEntry {
  readonly clientMessageId: string;
  readonly chatId: string;
  readonly content: string;
  readonly state: OutboxState;
  readonly error?: CourierError | undefined;
  /** The persisted message's sequence, once saved. */
  readonly sequence?: number | undefined;
  /** A failed entry goes back into the queue (same clientMessageId). */
  retry(): void;
  /** Drops an unsent entry (and its optimistic message). */
  cancel(): void;
}

export interface OutboxDeps {
  store: Store;
  storage: OutboxStorage;
  me(): string | null;
  /** POST /chats/:chatId/messages; throws CourierError. */
  post(chatId: string, body: Record<string, unknown>): Promise<void>;
  /**
   * Loads the chat's history after `afterSequence` into the store until `clientMessageId`
   * shows up (reconciles a saved event we missed, e.g. for a re-send deduplicated after a reload).
   */
  reconcile(chatId: string, afterSequence: number, clientMessageId: string): Promise<void>;
  onChange(entries: OutboxEntry[]): void;
  onError(err: unknown): void;
  backoff?: BackoffOptions;
  /** How long after a 202 without `chat.message.saved` before asking history (ms). */
  confirmAfterMs?: number;
  random?: () => number;
}

const KEEP_FINISHED = 200;
const rank: Record<OutboxState, number> = { failed: -1, sending: 0, sent: 1, delivered: 2, read: 3 };

class Entry implements OutboxEntry {
  state: OutboxState = 'sending';
  error: CourierError | undefined;
  sequence: number | undefined;
  accepted = false;
  confirmTries = 0;

  constructor(readonly outbox: Outbox, readonly clientMessageId: string, readonly chatId: string,
    readonly content: string, readonly replyToId: string | null, readonly attachments: string[],
    readonly createdAt: string, readonly afterSequence: number) {}

  retry(): void { this.outbox.retry(this); }
  cancel(): void { this.outbox.cancel(this); }

  toJSON(): StoredEntry {
    return {
      clientMessageId: this.clientMessageId, chatId: this.chatId, content: this.content,
      replyToId: this.replyToId, attachments: this.attachments,
      state: this.state === 'failed' ? 'failed' : 'sending', createdAt: this.createdAt,
      afterSequence: this.afterSequence,
      error: this.error ? { status: this.error.status, code: this.error.code, message: this.error.message } : null,
    };
  }
}

export class Outbox {
  #entries = new Map<string, Entry>();
  #running = new Map<string, AbortController>();
  #saving: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly deps: OutboxDeps) {}

  list(): OutboxEntry[] { return [...this.#entries.values()]; }

  /** Loads the stored entries (once `me` is known), shows them and re-sends the unsent. */
  async restore(): Promise<void> {
    const stored = await this.deps.storage.load();
    for (const s of stored) {
      if (this.#entries.has(s.clientMessageId)) continue;
      const e = new Entry(this, s.clientMessageId, s.chatId, s.content, s.replyToId ?? null,
        s.attachments ?? [], s.createdAt, s.afterSequence ?? 0);
      e.state = s.state;
      if (s.error) e.error = new CourierError(s.error.status, s.error.code, s.error.message);
      this.#entries.set(e.clientMessageId, e);
      this.deps.store.addPending(this.#pending(e));
    }
    this.#changed(false);
    for (const chatId of new Set(stored.map((s) => s.chatId))) this.#run(chatId);
  }

  send(chatId: string, input: SendInput): OutboxEntry {
    const store = this.deps.store;
    const after = Math.max(store.chat(chatId)?.lastSequence ?? 0, store.lastSequence(chatId));
    const e = new Entry(this, crypto.randomUUID(), chatId, input.content, input.replyToId ?? null,
      input.attachments ?? [], new Date().toISOString(), after);
    this.#entries.set(e.clientMessageId, e);
    this.deps.store.addPending(this.#pending(e));
    this.#changed(true);
    this.#run(chatId);
    return e;
  }

  retry(e: Entry): void {
    if (e.state !== 'failed') return;
    e.state = 'sending';
    e.error = undefined;
    e.accepted = false;
    this.deps.store.setPendingState(e.chatId, e.clientMessageId, 'sending');
    this.#changed(true);
    this.#run(e.chatId);
  }

  cancel(e: Entry): void {
    if (rank[e.state] >= rank.sent) return;
    this.#entries.delete(e.clientMessageId);
    this.deps.store.removePending(e.chatId, e.clientMessageId);
    this.#changed(true);
  }

  /** Retries now whatever waits for a backoff (the network came back, the socket reconnected). */
  kick(): void {
    for (const ctl of this.#running.values()) ctl.abort(new Error('kick'));
  }

  /** Pauses sending (the client disconnected on purpose); entries stay queued. */
  stop(): void {
    this.#stopped = true;
    this.kick();
  }

  /** Resumes sending after stop(). */
  resume(): void {
    this.#stopped = false;
    for (const chatId of new Set([...this.#entries.values()].map((e) => e.chatId))) this.#run(chatId);
  }

  /** A message of ours was stored or changed: advance the matching entry. */
  onOwnMessage(m: Message): void {
    const e = this.#entries.get(m.clientMessageId);
    if (!e || e.chatId !== m.chatId) return;
    const next: OutboxState = m.status === 'read' ? 'read' : m.status === 'delivered' ? 'delivered' : 'sent';
    if (rank[next] <= rank[e.state] && e.sequence !== undefined) return;
    const wasUnsent = rank[e.state] < rank.sent;
    e.state = rank[next] > rank[e.state] ? next : e.state;
    e.sequence = m.sequence;
    e.accepted = true;
    e.error = undefined;
    this.#changed(wasUnsent);
  }

  #pending(e: Entry): PendingMessage {
    return {
      id: null, sequence: null, clientMessageId: e.clientMessageId, chatId: e.chatId,
      senderId: this.deps.me() ?? '', content: e.content, messageType: 'text', status: 'sent',
      pending: e.state === 'failed' ? 'failed' : 'sending', createdAt: e.createdAt, sentAt: e.createdAt,
      deliveredCount: 0, readCount: 0, editedAt: null, deletedAt: null,
      replyTo: null, forwardedFrom: null, reactions: [], mentions: [], bot: null, attachments: [],
    };
  }

  /** Sends the chat's queued entries one after another (keeps their order). */
  #run(chatId: string): void {
    if (this.#running.has(chatId) || this.#stopped) return;
    let ctl = new AbortController();
    this.#running.set(chatId, ctl);
    const backoff = new Backoff(this.deps.backoff, this.deps.random);
    void (async () => {
      try {
        for (;;) {
          if (this.#stopped) return;
          const e = [...this.#entries.values()].find((x) => x.chatId === chatId && x.state === 'sending' && !x.accepted);
          if (!e) return;
          try {
            await this.deps.post(chatId, {
              content: e.content, clientMessageId: e.clientMessageId,
              ...(e.replyToId ? { replyToId: e.replyToId } : {}),
              ...(e.attachments.length ? { attachments: e.attachments } : {}),
            });
            e.accepted = true;
            backoff.reset();
            this.#confirmLater(e);
          } catch (err) {
            const ce = err instanceof CourierError ? err : new CourierError(0, 'network', String(err));
            if (ce.retryable) {
              e.error = ce;
              this.#changed(false);
              try {
                await delay(Math.max(ce.retryAfterMs ?? 0, backoff.next()), ctl.signal);
              } catch {
                ctl = new AbortController();
                this.#running.set(chatId, ctl);
              }
            } else {
              e.state = 'failed';
              e.error = ce;
              this.deps.store.setPendingState(chatId, e.clientMessageId, 'failed');
              this.#changed(true);
            }
          }
        }
      } finally {
        this.#running.delete(chatId);
      }
    })();
  }

  /** A 202 without a saved event after a while: look at the history (a reload, a lost event). */
  #confirmLater(e: Entry): void {
    const wait = (this.deps.confirmAfterMs ?? 8000) * 2 ** e.confirmTries;
    const timer = setTimeout(() => {
      if (this.#stopped || rank[e.state] >= rank.sent || !this.#entries.has(e.clientMessageId)) return;
      e.confirmTries += 1;
      this.deps.reconcile(e.chatId, e.afterSequence, e.clientMessageId).catch((err) => this.deps.onError(err)).finally(() => {
        if (e.confirmTries < 4 && rank[e.state] < rank.sent) this.#confirmLater(e);
      });
    }, wait);
    (timer as any).unref?.();
  }

  #changed(persist: boolean): void {
    // Keep the newest finished entries only.
    const finished = [...this.#entries.values()].filter((x) => rank[x.state] >= rank.sent);
    for (const x of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.#entries.delete(x.clientMessageId);
    if (persist) {
      const unsent = [...this.#entries.values()].filter((x) => rank[x.state] < rank.sent).map((x) => x.toJSON());
      this.#saving = this.#saving.then(() => this.deps.storage.save(unsent)).catch((err) => this.deps.onError(err));
    }
    this.deps.onChange(this.list());
  }

  /** Resolves when every storage write asked so far is done. */
  flushed(): Promise<void> { return this.#saving; }
}
