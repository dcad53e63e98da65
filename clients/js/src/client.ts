// CourierClient: the connection state machine (disconnected → connecting → connected, with
// full-jitter reconnects and the window's online/offline), the token (single-flight refresh
// before `auth.expiring` and on `unauthorized`/401), recovery by offset with a REST +
// `chat.sync` re-sync after `recovered: false`, and the store and outbox behind them.

import { Backoff, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { CourierError } from './errors.js';
import { CourierApi, query } from './api.js';
import { Outbox, type OutboxEntry, type SendInput } from './outbox.js';
import type { FetchLike } from './rest.js';
import { MemoryStorage, type OutboxStorage } from './storage.js';
import { jwtExpiry } from './tokens.js';
import { SocketIoTransport, SseTransport, type Transport, type TransportHandlers } from './transport.js';
import type { ConnectionState, Message, ServerEvents } from './types.js';

export interface CourierClientOptions {
  /** REST origin (`api` or `courier`). */
  baseUrl: string;
  /** Socket.IO / SSE origin; default `baseUrl`. */
  gatewayUrl?: string;
  /** Returns a valid access token; called at connect, before `auth.expiring` and on 401 (single flight). */
  getToken: () => Promise<string>;
  transport?: 'socketio' | 'sse';
  socketTransports?: ('websocket' | 'polling')[];
  storage?: OutboxStorage;
  backoff?: BackoffOptions;
  fetch?: FetchLike;
  WebSocket?: unknown;
  eventSource?: unknown;
  /** Source of `online` / `offline` events (default globalThis when it has addEventListener). */
  window?: EventTarget | null;
  /** Random source for the backoff jitter (tests). */
  random?: () => number;
  /** Wait for `session.recovered` after a connect this long before re-syncing anyway (ms). */
  sessionTimeoutMs?: number;
  /** After a 202 without `chat.message.saved` for this long, the outbox checks the history (ms, default 8000). */
  confirmAfterMs?: number;
  /** Replaces the built-in transports (tests, custom transports). */
  transportFactory?: (handlers: TransportHandlers) => Transport;
}

export type ClientEvents = {
  state: [ConnectionState, { reason?: string }];
  recovered: [{ recovered: boolean; offset: string | null }];
  resync: [];
  event: [string, any];
  error: [unknown];
  outbox: [OutboxEntry[]];
};

/** Refresh the SSE stream's token this long before it expires (SSE has no `auth.expiring`). */
const SSE_REFRESH_LEAD_MS = 60_000;
const FATAL = new Set(['session_revoked', 'banned', 'account_deleted']);

export class CourierClient extends CourierApi {
  #state: ConnectionState = 'disconnected';
  #wanted = false;
  #offset: string | null = null;
  #transport: Transport;
  #backoff: Backoff;
  #emitter = new Emitter<ClientEvents>((err) => this.#emitter.emit('error', err));
  #outbox: Outbox;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #sessionTimer: ReturnType<typeof setTimeout> | null = null;
  #expiryTimer: ReturnType<typeof setTimeout> | null = null;
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #attempt = 0;
  #authFailures = 0;
  #offline = false;
  #started: Promise<void> | null = null;
  #socketRefresh: Promise<void> | null = null;
  #midResync: Promise<void> | null = null;
  #resyncAgain = false;
  #refreshTimer: ReturnType<typeof setTimeout> | null = null;
  #refreshDue = 0;
  /** Expiry (ms) of the token the open socket runs under. */
  #socketTokenExp: number | null = null;
  #window: EventTarget | null;
  #onOnline = () => this.#online();
  #onOffline = () => this.#goOffline();

  constructor(private readonly options: CourierClientOptions) {
    super(required(options).baseUrl, options.getToken, options.fetch ?? globalThis.fetch.bind(globalThis));
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#outbox = new Outbox({
      store: this.store,
      storage: options.storage ?? new MemoryStorage(),
      me: () => this.userId,
      post: async (chatId, body) => { await this.rest.json('POST', `/chats/${chatId}/messages`, body); },
      reconcile: (chatId, after, clientMessageId) => this.#findSent(chatId, after, clientMessageId),
      onChange: (entries) => this.#emitter.emit('outbox', entries),
      onError: (err) => this.#emitter.emit('error', err),
      backoff: options.backoff,
      random: options.random,
      confirmAfterMs: options.confirmAfterMs,
    });
    const handlers: TransportHandlers = {
      onOpen: () => this.#opened(),
      onEvent: (name, payload) => this.#event(name, payload),
      onFail: (reason) => this.#failed(reason),
      onClose: (reason) => this.#closed(reason),
    };
    const gateway = options.gatewayUrl ?? options.baseUrl;
    this.#transport = options.transportFactory ? options.transportFactory(handlers)
      : options.transport === 'sse'
      ? new SseTransport(gateway, handlers, options.eventSource ?? (globalThis as any).EventSource)
      : new SocketIoTransport(gateway, handlers, { transports: options.socketTransports, WebSocket: options.WebSocket });
    const win = options.window === undefined
      ? (typeof (globalThis as any).addEventListener === 'function' ? (globalThis as unknown as EventTarget) : null)
      : options.window;
    this.#window = win;
  }

  protected override ownMessage(m: Message): void { this.#outbox?.onOwnMessage(m); }
  protected override reportError(err: unknown): void { this.#emitter.emit('error', err); }

  // ---- connection ----------------------------------------------------------------------

  get state(): ConnectionState { return this.#state; }
  /** The last offset seen (what a reconnect resumes from). */
  get offset(): string | null { return this.#offset; }
  /** The transport in use. */
  get transport(): 'socketio' | 'sse' { return this.#transport.kind; }

  on<K extends keyof ClientEvents>(name: K, fn: (...args: ClientEvents[K]) => void): () => void {
    return this.#emitter.on(name, fn);
  }

  /** Connects (and keeps reconnecting); resolves once connected and (re)synced. */
  connect(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      if (this.#state === 'connected') resolve();
      else this.#waiters.push({ resolve, reject });
    });
    if (!this.#wanted) {
      this.#wanted = true;
      if (this.#window) {
        this.#window.addEventListener('online', this.#onOnline);
        this.#window.addEventListener('offline', this.#onOffline);
      }
      if (this.#started) this.#outbox.resume();
      this.#started ??= this.#start();
      this.#started.then(() => this.#attemptNow(), (err) => {
        this.#started = null; // a later connect() starts over
        this.#fatal('start failed', err);
      });
    }
    return done;
  }

  /** Closes the connection and stops reconnecting; the store stays. */
  disconnect(): void {
    this.#wanted = false;
    this.#clearTimers();
    this.#transport.close();
    this.#outbox.stop();
    if (this.#window) {
      this.#window.removeEventListener('online', this.#onOnline);
      this.#window.removeEventListener('offline', this.#onOffline);
    }
    this.store.dispose();
    this.#setState('disconnected', 'client');
    this.#rejectWaiters(new Error('disconnected by the client'));
  }

  /** `chat.typing` over the socket (a no-op on SSE or while not connected). */
  async setTyping(chatId: string, isTyping: boolean): Promise<void> {
    if (this.#transport.kind !== 'socketio' || this.#state !== 'connected') return;
    await this.#ack('chat.typing', { chatId, isTyping });
  }


  // ---- sending -------------------------------------------------------------------------

  send(chatId: string, input: SendInput): OutboxEntry {
    return this.#outbox.send(chatId, input);
  }

  outbox(): OutboxEntry[] { return this.#outbox.list(); }

  /** Resolves when the outbox's storage writes so far are done. */
  outboxFlushed(): Promise<void> { return this.#outbox.flushed(); }

  // ---- internals -----------------------------------------------------------------------

  async #start(): Promise<void> {
    for (;;) {
      try {
        this.me = await this.rest.json('GET', '/users/me');
        this.userId = this.me!.id;
        this.store.setUser(this.me!);
        break;
      } catch (err) {
        if (err instanceof CourierError && !err.retryable) throw err;
        this.#emitter.emit('error', err);
        this.#setState('disconnected', 'network');
        await new Promise((r) => setTimeout(r, this.#backoff.next()));
        if (!this.#wanted) throw new Error('disconnected by the client');
      }
    }
    await this.#outbox.restore();
  }

  #setState(state: ConnectionState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emitter.emit('state', state, reason ? { reason } : {});
  }

  async #attemptNow(): Promise<void> {
    if (!this.#wanted || this.#offline) return;
    this.#clearRetry();
    const attempt = ++this.#attempt;
    this.#setState('connecting');
    let token: string;
    try {
      token = await this.tokens.current();
      const exp = jwtExpiry(token);
      if (exp !== null && exp * 1000 - Date.now() < 1000) token = await this.tokens.refresh(token);
    } catch (err) {
      this.#emitter.emit('error', err);
      this.#scheduleRetry('token');
      return;
    }
    if (attempt !== this.#attempt || !this.#wanted) return;
    const exp = jwtExpiry(token);
    this.#socketTokenExp = exp === null ? null : exp * 1000;
    this.#transport.open(token, this.#offset);
  }

  #scheduleRetry(reason: string, ms = this.#backoff.next()): void {
    if (!this.#wanted || this.#offline) return;
    this.#setState('disconnected', reason);
    this.#clearRetry();
    this.#retryTimer = setTimeout(() => { this.#retryTimer = null; void this.#attemptNow(); }, ms);
  }

  #opened(): void {
    this.#clearSessionTimer();
    // The server sends session.recovered first thing; if it never comes, re-sync anyway.
    this.#sessionTimer = setTimeout(() => {
      this.#sessionTimer = null;
      void this.#session({ recovered: false, offset: this.#offset });
    }, this.options.sessionTimeoutMs ?? 10_000);
  }

  #failed(reason: string): void {
    if (!this.#wanted) return;
    if (FATAL.has(reason)) { this.#fatal(reason, new CourierError(401, reason, reason)); return; }
    if (reason === 'unauthorized') {
      this.#authFailures += 1;
      const stale = this.tokens.peek();
      this.tokens.refresh(stale).then(
        () => this.#scheduleRetry(reason, this.#authFailures <= 1 ? 0 : this.#backoff.next()),
        (err) => { this.#emitter.emit('error', err); this.#scheduleRetry(reason); },
      );
      this.#setState('disconnected', reason);
      return;
    }
    this.#scheduleRetry(reason);
  }

  #closed(reason: string): void {
    this.#clearSessionTimer();
    this.#clearExpiryTimer();
    this.#clearRefreshTimer();
    if (!this.#wanted) return;
    this.#scheduleRetry(reason);
  }

  #fatal(reason: string, err: unknown): void {
    this.#wanted = false;
    this.#clearTimers();
    this.#transport.close();
    this.#setState('disconnected', reason);
    this.#emitter.emit('error', err);
    this.#rejectWaiters(err);
  }

  #event(name: string, payload: any): void {
    if (payload && typeof payload.offset === 'string' && name !== 'session.recovered') this.#offset = payload.offset;
    switch (name) {
      case 'session.recovered': void this.#session(payload); return;
      case 'auth.expiring':
        // A warning that comes while a refresh is in flight is about the token being replaced
        // (or the new one, whose own timer is armed when the refresh is acknowledged).
        if (!this.#socketRefresh) this.#armSocketRefresh(Date.parse(payload?.expiresAt), false);
        break;
      case 'auth.revoked': this.#fatal(payload?.reason ?? 'session_revoked', new CourierError(401, 'session_revoked', `auth.revoked: ${payload?.reason}`)); break;
      default:
        try { this.store.apply(name as keyof ServerEvents, payload); } catch (err) { this.#emitter.emit('error', err); }
    }
    this.#emitter.emit('event', name, payload);
  }

  async #session(p: { recovered: boolean; offset: string | null }): Promise<void> {
    if (!this.#sessionTimer && this.#state === 'connected') { await this.#midSession(p); return; }
    this.#clearSessionTimer();
    if (p.offset) this.#offset = p.offset;
    this.#emitter.emit('event', 'session.recovered', p);
    const attempt = this.#attempt;
    if (!p.recovered) {
      try {
        await this.#resync();
      } catch (err) {
        if (attempt !== this.#attempt || !this.#wanted) return;
        this.#emitter.emit('error', err);
        this.#transport.close();
        this.#scheduleRetry('resync failed');
        return;
      }
      // The connection went away (or another attempt started) while re-syncing.
      if (attempt !== this.#attempt || !this.#wanted || this.#retryTimer) return;
    }
    this.#authFailures = 0;
    this.#backoff.reset();
    this.#setState('connected');
    this.#emitter.emit('recovered', { recovered: !!p.recovered, offset: this.#offset });
    if (!p.recovered) this.#emitter.emit('resync');
    this.#scheduleSseRefresh();
    this.#armSocketRefresh(this.#socketTokenExp, true);
    this.#outbox.kick();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  /**
   * `session.recovered` on an open connection (the server's event stream started over, e.g.
   * after a Redis failover): a new offset, and after `recovered: false` the same re-sync as on
   * a reconnect while the connection stays up; one at a time (a second one re-syncs again).
   */
  async #midSession(p: { recovered: boolean; offset: string | null }): Promise<void> {
    if (p.offset) this.#offset = p.offset;
    this.#emitter.emit('event', 'session.recovered', p);
    if (p.recovered) { this.#emitter.emit('recovered', { recovered: true, offset: this.#offset }); return; }
    if (this.#midResync) { this.#resyncAgain = true; return; }
    const attempt = this.#attempt;
    this.#midResync = (async () => {
      do {
        this.#resyncAgain = false;
        await this.#resync();
      } while (this.#resyncAgain && attempt === this.#attempt);
    })();
    try {
      await this.#midResync;
      if (attempt !== this.#attempt || !this.#wanted) return;
      this.#emitter.emit('recovered', { recovered: false, offset: this.#offset });
      this.#emitter.emit('resync');
    } catch (err) {
      if (attempt !== this.#attempt || !this.#wanted) return;
      this.#emitter.emit('error', err);
      this.#transport.close();
      this.#scheduleRetry('resync failed');
    } finally {
      this.#midResync = null;
    }
  }

  /**
   * After `recovered: false`: the chat list; then, per chat with loaded messages, the held
   * range again from history (edits, deletes, reactions and receipts made while away: the
   * snapshots replace the stored ones) and its pins if loaded; then what came after, with
   * `chat.sync` (Socket.IO, following `hasMore`) or history (SSE).
   */
  async #resync(): Promise<void> {
    await this.loadChats();
    // Only chats the user still has (a chat left while away is dropped by loadChats).
    const known = (pts: Record<string, number>) =>
      Object.fromEntries(Object.entries(pts).filter(([chatId]) => this.store.chat(chatId)));
    for (const [chatId, high] of Object.entries(known(this.store.syncPoints()))) {
      const kept = await this.#historyAfter(chatId, this.store.firstSequence(chatId) - 1, high);
      if (kept && this.store.pinsLoaded(chatId)) await this.loadPins(chatId);
    }
    let points = known(this.store.syncPoints());
    if (this.#transport.kind === 'socketio') {
      for (let round = 0; Object.keys(points).length && round < 1000; round++) {
        const ack = await this.#ack('chat.sync', { chats: points });
        this.store.addMessages(ack.messages);
        if (!ack.hasMore) break;
        const next = known(this.store.syncPoints());
        if (JSON.stringify(next) === JSON.stringify(points)) break;
        points = next;
      }
    } else {
      for (const [chatId, after] of Object.entries(points)) await this.#historyAfter(chatId, after, Infinity);
    }
  }

  /** History after `after` into the store, page by page, until the message shows up (≤ 10 pages). */
  async #findSent(chatId: string, after: number, clientMessageId: string): Promise<void> {
    let from = after;
    for (let page = 0; page < 10; page++) {
      const body = await this.request('GET', `/chats/${chatId}/messages${query({ after: from, limit: 100 })}`);
      this.store.addMessages(body.messages);
      if (body.messages.some((m: Message) => m.clientMessageId === clientMessageId) || !body.hasMore) return;
      from = body.messages[body.messages.length - 1].sequence;
    }
  }

  /**
   * History of `chatId` after sequence `after` up to `until` (or its end) into the store;
   * false when the chat is gone (403/404: dropped from the store).
   */
  async #historyAfter(chatId: string, after: number, until: number): Promise<boolean> {
    let from = after;
    while (from < until) {
      let page;
      try {
        page = await this.request('GET', `/chats/${chatId}/messages${query({ after: from, limit: 100 })}`);
      } catch (err) {
        if (err instanceof CourierError && (err.status === 403 || err.status === 404)) {
          this.store.apply('chat.removed', { chatId });
          return false;
        }
        throw err;
      }
      this.store.addMessages(page.messages);
      if (!page.hasMore || !page.messages.length) break;
      from = page.messages[page.messages.length - 1].sequence;
    }
    return true;
  }

  async #ack(name: string, payload: unknown): Promise<any> {
    const emit = this.#transport.emitWithAck;
    if (!emit) throw new Error(`${name}: not available on ${this.#transport.kind}`);
    const ack = await emit.call(this.#transport, name, payload);
    if (ack?.status !== 'ok') throw new CourierError(0, ack?.code ?? 'error', ack?.message ?? `${name} failed`);
    return ack;
  }

  /**
   * Schedules the socket's next `auth.refresh` from its token's expiry: a minute ahead (when the
   * server warns) while that is at least 1 s away, else at half the remaining life (at least
   * 1 s away) for tokens that live about a minute or less, so the refresh
   * neither waits for a second `auth.expiring` nor runs back to back. `force` replaces a
   * sooner timer (after a refresh); otherwise the sooner of the two stays.
   */
  #armSocketRefresh(expMs: number | null, force: boolean): void {
    if (this.#transport.kind !== 'socketio' || expMs === null || !Number.isFinite(expMs)) return;
    const remaining = expMs - Date.now();
    const wait = Math.min(86_400_000, remaining - 60_000 >= 1000 ? remaining - 60_000 : Math.max(1000, remaining / 2));
    const due = Date.now() + wait;
    if (this.#refreshTimer && !force && this.#refreshDue <= due) return;
    this.#clearRefreshTimer();
    this.#refreshDue = due;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null;
      void this.#refreshSocketToken();
    }, wait);
  }

  /** A new token (single flight), handed to the open socket with `auth.refresh`. */
  #refreshSocketToken(): Promise<void> {
    this.#socketRefresh ??= (async () => {
      let exp: number | null = null;
      try {
        const token = await this.tokens.refresh(this.tokens.peek());
        const jwtExp = jwtExpiry(token);
        exp = jwtExp === null ? null : jwtExp * 1000;
        const ack = await this.#ack('auth.refresh', { token });
        const acked = Date.parse(ack?.expiresAt);
        if (Number.isFinite(acked)) exp = acked;
        this.#socketTokenExp = exp;
      } catch (err) {
        this.#emitter.emit('error', err);
        exp = this.#socketTokenExp; // try again at half the time left; at expiry the reconnect takes over
      } finally {
        this.#socketRefresh = null;
      }
      if (this.#state === 'connected') this.#armSocketRefresh(exp, true);
    })();
    return this.#socketRefresh;
  }

  /** SSE streams end when their token expires: reopen with a fresh one a minute before. */
  #scheduleSseRefresh(): void {
    if (this.#transport.kind !== 'sse') return;
    this.#clearExpiryTimer();
    const token = this.tokens.peek();
    const exp = token ? jwtExpiry(token) : null;
    if (exp === null) return;
    const ms = Math.max(1000, exp * 1000 - Date.now() - SSE_REFRESH_LEAD_MS);
    this.#expiryTimer = setTimeout(async () => {
      this.#expiryTimer = null;
      try {
        await this.tokens.refresh(token);
      } catch (err) { this.#emitter.emit('error', err); }
      if (!this.#wanted) return;
      this.#transport.close();
      this.#clearSessionTimer();
      void this.#attemptNow();
    }, ms);
  }

  #online(): void {
    this.#offline = false;
    if (this.#wanted && this.#state !== 'connected') void this.#attemptNow();
    this.#outbox.kick();
  }

  #goOffline(): void {
    this.#offline = true;
    this.#clearTimers();
    this.#transport.close();
    this.#setState('disconnected', 'offline');
  }

  #rejectWaiters(err: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }

  #clearRetry(): void { if (this.#retryTimer) { clearTimeout(this.#retryTimer); this.#retryTimer = null; } }
  #clearSessionTimer(): void { if (this.#sessionTimer) { clearTimeout(this.#sessionTimer); this.#sessionTimer = null; } }
  #clearExpiryTimer(): void { if (this.#expiryTimer) { clearTimeout(this.#expiryTimer); this.#expiryTimer = null; } }
  #clearRefreshTimer(): void { if (this.#refreshTimer) { clearTimeout(this.#refreshTimer); this.#refreshTimer = null; } }
  #clearTimers(): void { this.#clearRetry(); this.#clearSessionTimer(); this.#clearExpiryTimer(); this.#clearRefreshTimer(); }
}

function required(options: CourierClientOptions): CourierClientOptions {
  if (!options?.baseUrl) throw new Error('baseUrl is required');
  if (typeof options.getToken !== 'function') throw new Error('getToken is required');
  return options;
}
