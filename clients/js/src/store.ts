// The local store: chats, messages per chat (ordered and deduped by sequence, gaps filled
// from history before later messages show), optimistic messages, reactions, pins, receipts,
// typing, presence, users and notifications. It applies server events and REST results and
// tells subscribers what changed; it does no I/O itself (the client passes fetch hooks).

import type {
  Chat, ChatSettings, Message, Notification, PendingMessage, Presence, ServerEvents,
  StoreMessage, User,
} from './types.js';

/** What changed: subscribers re-read what they show. */
export interface StoreChange {
  type: 'chats' | 'messages' | 'typing' | 'presence' | 'user' | 'pins' | 'notifications';
  chatId?: string;
  userId?: string;
}

export interface StoreHooks {
  /** The signed-in user's id (null before it is known). */
  me(): string | null;
  /** `GET /chats/:chatId/messages?after=` for gap filling. */
  fetchAfter(chatId: string, after: number): Promise<{ messages: Message[]; hasMore: boolean }>;
  /** `GET /users/:userId` for `store.user()`. */
  fetchUser?(userId: string): Promise<User>;
  /** Called for every new or changed message of the signed-in user (outbox reconciliation). */
  onOwnMessage?(message: Message): void;
  onError?(err: unknown): void;
}

/** How long a `chat.typing` `true` lasts without a refresh (the server's own rule). */
export const TYPING_TTL_MS = 6000;
const GAP_RETRY_MS = 2000;
const GAP_RETRIES = 5;

interface ChatMessages {
  bySeq: Map<number, Message>;
  idToSeq: Map<string, number>;
  /** Lowest and highest sequences of the contiguous run shown; 0 while empty. */
  low: number;
  high: number;
  hasMoreBefore: boolean;
  pending: PendingMessage[];
  pins: Set<string>;
  pinsLoaded: boolean;
  marks: Map<string, { delivered: number; read: number }>;
  filling: boolean;
  gapRetries: number;
}

const DEFAULT_SETTINGS: ChatSettings = { mutedUntil: null, archived: false, muteMentions: false };
const rank = { sent: 0, delivered: 1, read: 2 } as const;

export class Store {
  #chats = new Map<string, Chat>();
  #msgs = new Map<string, ChatMessages>();
  #typing = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();
  #presence = new Map<string, Presence>();
  #users = new Map<string, User>();
  #usersLoading = new Set<string>();
  #notifications: Notification[] = [];
  #subscribers = new Set<(change: StoreChange) => void>();

  constructor(private readonly hooks: StoreHooks) {}

  // ---- reading -------------------------------------------------------------------------

  /** Chats, most recently active first. */
  chats(): Chat[] {
    const at = (c: Chat) => Date.parse(c.lastMessage?.sentAt ?? c.createdAt) || 0;
    return [...this.#chats.values()].sort((a, b) => at(b) - at(a));
  }

  chat(chatId: string): Chat | undefined { return this.#chats.get(chatId); }

  /** Ascending by sequence (the contiguous run), optimistic messages last. */
  messages(chatId: string): StoreMessage[] {
    const c = this.#msgs.get(chatId);
    if (!c) return [];
    const out: StoreMessage[] = [];
    if (c.high > 0) for (let s = c.low; s <= c.high; s++) { const m = c.bySeq.get(s); if (m) out.push(m); }
    return out.concat(c.pending);
  }

  /** The stored message with that id (shown or waiting behind a gap). */
  message(chatId: string, messageId: string): Message | undefined {
    const c = this.#msgs.get(chatId);
    const seq = c?.idToSeq.get(messageId);
    return seq === undefined ? undefined : c!.bySeq.get(seq);
  }

  hasMoreBefore(chatId: string): boolean {
    const c = this.#msgs.get(chatId);
    if (!c || c.high === 0) return (this.#chats.get(chatId)?.lastSequence ?? 1) > 0;
    return c.hasMoreBefore && c.low > 1;
  }

  /** Highest sequence of the contiguous run (0 when nothing is loaded). */
  lastSequence(chatId: string): number { return this.#msgs.get(chatId)?.high ?? 0; }

  /** Lowest loaded sequence (0 when nothing is loaded): the `before` cursor for older history. */
  firstSequence(chatId: string): number { return this.#msgs.get(chatId)?.low ?? 0; }

  /** Chats with loaded messages and their last contiguous sequence (for `chat.sync`). */
  syncPoints(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [chatId, c] of this.#msgs) if (c.high > 0) out[chatId] = c.high;
    return out;
  }

  pins(chatId: string): Set<string> { return new Set(this.#msgs.get(chatId)?.pins ?? []); }

  /** Whether the chat's pins were loaded (`setPins`), so a re-sync reloads them. */
  pinsLoaded(chatId: string): boolean { return this.#msgs.get(chatId)?.pinsLoaded ?? false; }

  typing(chatId: string): string[] { return [...(this.#typing.get(chatId)?.keys() ?? [])]; }

  presence(userId: string): Presence | undefined { return this.#presence.get(userId); }

  /** A cached user; an unknown one is fetched in the background (a `user` change follows). */
  user(userId: string): User | undefined {
    const u = this.#users.get(userId);
    if (!u && this.hooks.fetchUser && !this.#usersLoading.has(userId)) {
      this.#usersLoading.add(userId);
      this.hooks.fetchUser(userId).then((user) => this.setUser(user), (err) => this.hooks.onError?.(err))
        .finally(() => this.#usersLoading.delete(userId));
    }
    return u;
  }

  notifications(): Notification[] { return [...this.#notifications]; }

  subscribe(fn: (change: StoreChange) => void): () => void {
    this.#subscribers.add(fn);
    return () => { this.#subscribers.delete(fn); };
  }

  // ---- writing: REST results -----------------------------------------------------------

  /**
   * `GET /chats`: the list replaces the known chats (messages stay). Archived chats, which the
   * list leaves out, are kept; any other chat missing from it is gone (left or removed).
   */
  setChats(chats: Chat[]): void {
    const next = new Map(chats.map((c) => [c.id, this.#normalChat(c, this.#chats.get(c.id))]));
    for (const [id, c] of this.#chats) {
      if (next.has(id)) continue;
      if (c.settings?.archived) next.set(id, c);
      else { this.#msgs.delete(id); this.#clearTyping(id); }
    }
    this.#chats = next;
    this.#emit({ type: 'chats' });
  }

  upsertChat(chat: Partial<Chat> & { id: string }): void {
    this.#chats.set(chat.id, this.#normalChat(chat, this.#chats.get(chat.id)));
    this.#emit({ type: 'chats', chatId: chat.id });
  }

  /** A page of history (ascending). `before`: it ends right below the loaded run. */
  addHistory(chatId: string, messages: Message[], hasMore: boolean, direction: 'before' | 'after' | 'latest'): void {
    const c = this.#chatMessages(chatId);
    const wasEmpty = c.high === 0;
    this.#insertAll(messages);
    if (direction === 'before' || (direction === 'latest' && wasEmpty)) c.hasMoreBefore = hasMore;
    this.#emit({ type: 'messages', chatId });
  }

  /** Messages from `chat.sync` or any source, oldest first, possibly of several chats. */
  addMessages(messages: Message[]): void {
    const chats = this.#insertAll(messages);
    for (const chatId of chats) this.#emit({ type: 'messages', chatId });
  }

  setPins(chatId: string, messageIds: string[]): void {
    const c = this.#chatMessages(chatId);
    c.pins = new Set(messageIds);
    c.pinsLoaded = true;
    this.#emit({ type: 'pins', chatId });
  }

  setUser(user: User): void {
    this.#users.set(user.id, user);
    this.#emit({ type: 'user', userId: user.id });
  }

  setPresence(userId: string, presence: Presence): void {
    this.#presence.set(userId, presence);
    this.#emit({ type: 'presence', userId });
  }

  setNotifications(list: Notification[]): void {
    this.#notifications = [...list];
    this.#emit({ type: 'notifications' });
  }

  /** The signed-in user read up to `sequence`: recount the chat's unread messages. */
  markRead(chatId: string, sequence: number): void {
    const chat = this.#chats.get(chatId);
    if (!chat) return;
    const me = this.hooks.me();
    let unread = 0;
    if (sequence < chat.lastSequence) {
      const c = this.#msgs.get(chatId);
      for (let s = sequence + 1; s <= chat.lastSequence; s++) {
        const m = c?.bySeq.get(s);
        if (!m || m.senderId !== me) unread += 1;
      }
      unread = Math.min(unread, chat.unreadCount);
    }
    this.#chats.set(chatId, { ...chat, unreadCount: unread });
    this.#emit({ type: 'chats', chatId });
  }

  // ---- writing: optimistic messages ----------------------------------------------------

  addPending(p: PendingMessage): void {
    const c = this.#chatMessages(p.chatId);
    if (c.pending.some((x) => x.clientMessageId === p.clientMessageId)) return;
    // Already persisted (a reload re-sent it after it was saved)? Then it is no longer pending.
    for (const m of c.bySeq.values()) if (m.clientMessageId === p.clientMessageId && m.senderId === p.senderId) return;
    c.pending = [...c.pending, p];
    this.#emit({ type: 'messages', chatId: p.chatId });
  }

  setPendingState(chatId: string, clientMessageId: string, state: 'sending' | 'failed'): void {
    const c = this.#msgs.get(chatId);
    if (!c) return;
    c.pending = c.pending.map((p) => (p.clientMessageId === clientMessageId ? { ...p, pending: state } : p));
    this.#emit({ type: 'messages', chatId });
  }

  removePending(chatId: string, clientMessageId: string): void {
    const c = this.#msgs.get(chatId);
    if (!c) return;
    const before = c.pending.length;
    c.pending = c.pending.filter((p) => p.clientMessageId !== clientMessageId);
    if (c.pending.length !== before) this.#emit({ type: 'messages', chatId });
  }

  // ---- writing: server events ----------------------------------------------------------

  /** Applies one server event (unknown names are ignored). */
  apply<K extends keyof ServerEvents>(name: K, payload: ServerEvents[K]): void;
  apply(name: string, payload: any): void;
  apply(name: string, p: any): void {
    switch (name) {
      case 'chat.message.new':
      case 'chat.message.saved':
      case 'chat.message.updated': {
        // An edit of a message below the loaded run (history not paged that far) is left out:
        // storing it would show it across a hole. History pages bring it when asked.
        const c = this.#msgs.get(p.chatId);
        if (c && c.high > 0 && p.message.sequence < c.low - 1) {
          if (p.message.senderId === this.hooks.me()) {
            this.removePending(p.chatId, p.message.clientMessageId);
            this.hooks.onOwnMessage?.(p.message);
          }
          break;
        }
        this.addMessages([p.message]);
        break;
      }
      case 'chat.message.deleted': this.#deleted(p); break;
      case 'chat.message.status': this.#status(p); break;
      case 'chat.reaction.updated': this.#reaction(p); break;
      case 'chat.pins.updated': {
        const c = this.#chatMessages(p.chatId);
        const pins = new Set(c.pins);
        if (p.pinned) pins.add(p.messageId); else pins.delete(p.messageId);
        c.pins = pins;
        this.#emit({ type: 'pins', chatId: p.chatId });
        break;
      }
      case 'chat.typing': this.#typingEvent(p.chatId, p.userId, p.isTyping); break;
      case 'presence.update':
        this.setPresence(p.userId, { status: p.status, lastSeenAt: p.lastSeenAt ?? null });
        break;
      case 'chat.updated': this.upsertChat(p.chat); break;
      case 'chat.removed':
        this.#chats.delete(p.chatId);
        this.#msgs.delete(p.chatId);
        this.#clearTyping(p.chatId);
        this.#emit({ type: 'chats', chatId: p.chatId });
        this.#emit({ type: 'messages', chatId: p.chatId });
        break;
      case 'chat.settings': {
        const chat = this.#chats.get(p.chatId);
        if (chat) {
          this.#chats.set(p.chatId, { ...chat, settings: p.settings });
          this.#emit({ type: 'chats', chatId: p.chatId });
        }
        break;
      }
      case 'notification.new':
        if (!this.#notifications.some((n) => n.id === p.notification.id)) {
          this.#notifications = [p.notification, ...this.#notifications];
          this.#emit({ type: 'notifications' });
        }
        break;
      case 'user.updated': this.setUser(p.user); break;
      default: break;
    }
  }

  /** Stops typing timers (the client's `disconnect`). */
  dispose(): void {
    for (const chatId of [...this.#typing.keys()]) this.#clearTyping(chatId);
  }

  // ---- internals -----------------------------------------------------------------------

  #emit(change: StoreChange): void {
    for (const fn of [...this.#subscribers]) {
      try { fn(change); } catch (err) { this.hooks.onError?.(err); }
    }
  }

  #normalChat(chat: Partial<Chat> & { id: string }, old?: Chat): Chat {
    const defined = Object.fromEntries(Object.entries(chat).filter(([, v]) => v !== undefined));
    const merged = { unreadCount: 0, lastMessage: null, settings: DEFAULT_SETTINGS, ...old, ...defined } as Chat;
    // A list entry older than what events already told us keeps the newer last message.
    if (old && old.lastSequence > merged.lastSequence) {
      merged.lastSequence = old.lastSequence;
      merged.lastMessage = old.lastMessage;
    }
    return merged;
  }

  #chatMessages(chatId: string): ChatMessages {
    let c = this.#msgs.get(chatId);
    if (!c) {
      c = { bySeq: new Map(), idToSeq: new Map(), low: 0, high: 0, hasMoreBefore: true, pending: [],
        pins: new Set(), pinsLoaded: false, marks: new Map(), filling: false, gapRetries: 0 };
      this.#msgs.set(chatId, c);
    }
    return c;
  }

  /** Inserts messages; returns the chats touched. */
  #insertAll(messages: Message[]): Set<string> {
    const touched = new Set<string>();
    for (const m of messages) if (this.#insert(m)) touched.add(m.chatId);
    return touched;
  }

  /** Inserts or replaces one message; false if it changed nothing. */
  #insert(m: Message): boolean {
    const c = this.#chatMessages(m.chatId);
    const seq = m.sequence;
    const old = c.bySeq.get(seq);
    if (old) {
      if (old === m || isOlderSnapshot(m, old)) return false;
      c.bySeq.set(seq, m);
      this.#afterChange(m, false);
      return true;
    }
    c.bySeq.set(seq, m);
    c.idToSeq.set(m.id, seq);
    if (c.high === 0) {
      c.low = c.high = seq;
      c.hasMoreBefore = seq > 1;
    } else if (seq < c.low) {
      c.low = seq;
    }
    while (c.bySeq.has(c.high + 1)) c.high += 1;
    if (seq > c.high) this.#fillGap(m.chatId);
    this.#afterChange(m, true);
    return true;
  }

  #afterChange(m: Message, isNew: boolean): void {
    const me = this.hooks.me();
    const c = this.#msgs.get(m.chatId)!;
    if (isNew && m.senderId === me && c.pending.length) {
      c.pending = c.pending.filter((p) => p.clientMessageId !== m.clientMessageId);
    }
    const chat = this.#chats.get(m.chatId);
    if (chat && m.sequence >= chat.lastSequence) {
      const fresh = m.sequence > chat.lastSequence;
      const unread = chat.unreadCount + (fresh && m.senderId !== me ? 1 : 0);
      this.#chats.set(m.chatId, { ...chat, lastSequence: m.sequence, lastMessage: m, unreadCount: unread });
      this.#emit({ type: 'chats', chatId: m.chatId });
    }
    if (isNew && this.#typing.get(m.chatId)?.has(m.senderId)) this.#typingEvent(m.chatId, m.senderId, false);
    if (m.senderId === me) this.hooks.onOwnMessage?.(m);
  }

  /** Fetches what lies between the contiguous run and a message that arrived early. */
  #fillGap(chatId: string): void {
    const c = this.#msgs.get(chatId);
    if (!c || c.filling) return;
    c.filling = true;
    void (async () => {
      let failed = false;
      try {
        while (this.#msgs.get(chatId) === c && [...c.bySeq.keys()].some((s) => s > c.high)) {
          const before = c.high;
          const page = await this.hooks.fetchAfter(chatId, c.high);
          this.#insertAll(page.messages);
          if (c.high === before && !page.hasMore) break; // the server has nothing to fill it with
        }
        c.gapRetries = 0;
      } catch (err) {
        failed = true;
        this.hooks.onError?.(err);
      } finally {
        c.filling = false;
        this.#emit({ type: 'messages', chatId });
      }
      if (failed && c.gapRetries < GAP_RETRIES && this.#msgs.get(chatId) === c) {
        c.gapRetries += 1;
        setTimeout(() => this.#fillGap(chatId), GAP_RETRY_MS * c.gapRetries);
      }
    })();
  }

  #replace(chatId: string, messageId: string, fn: (m: Message) => Message): boolean {
    const c = this.#msgs.get(chatId);
    const seq = c?.idToSeq.get(messageId);
    const m = seq === undefined ? undefined : c!.bySeq.get(seq);
    if (!m) return false;
    const next = fn(m);
    c!.bySeq.set(seq!, next);
    const chat = this.#chats.get(chatId);
    if (chat?.lastMessage?.id === messageId) {
      this.#chats.set(chatId, { ...chat, lastMessage: next });
      this.#emit({ type: 'chats', chatId });
    }
    if (next.senderId === this.hooks.me()) this.hooks.onOwnMessage?.(next);
    this.#emit({ type: 'messages', chatId });
    return true;
  }

  #deleted(p: ServerEvents['chat.message.deleted']): void {
    this.#replace(p.chatId, p.messageId, (m) => (m.deletedAt ? m : {
      ...m, content: '', deletedAt: new Date().toISOString(), reactions: [], attachments: [], mentions: [],
      ...(p.deletedBy ? { deletedBy: p.deletedBy } : {}),
    }));
  }

  #reaction(p: ServerEvents['chat.reaction.updated']): void {
    const mine = p.userId === this.hooks.me();
    this.#replace(p.chatId, p.messageId, (m) => {
      const reactions = m.reactions.map((r) => ({ ...r }));
      const r = reactions.find((x) => x.emoji === p.emoji);
      if (r) {
        r.count = p.count;
        if (mine) r.me = p.added;
      } else if (p.count > 0) {
        reactions.push({ emoji: p.emoji, count: p.count, me: mine && p.added });
      }
      return { ...m, reactions: reactions.filter((x) => x.count > 0) };
    });
  }

  #status(p: ServerEvents['chat.message.status']): void {
    const c = this.#chatMessages(p.chatId);
    const mark = c.marks.get(p.userId) ?? { delivered: 0, read: 0 };
    mark.delivered = Math.max(mark.delivered, p.sequence);
    if (p.status === 'read') mark.read = Math.max(mark.read, p.sequence);
    c.marks.set(p.userId, mark);
    const me = this.hooks.me();
    const chat = this.#chats.get(p.chatId);
    const others = chat ? chat.participants.filter((x) => x.userId !== me).map((x) => x.userId) : [p.userId];
    const n = Math.max(1, others.length);
    let changed = false;
    for (const [seq, m] of c.bySeq) {
      if (seq > p.sequence || m.senderId !== me) continue;
      let dc = 0; let rc = 0;
      for (const u of others) {
        const k = c.marks.get(u);
        if (k && k.delivered >= seq) dc += 1;
        if (k && k.read >= seq) rc += 1;
      }
      const deliveredCount = Math.max(m.deliveredCount, dc);
      const readCount = Math.max(m.readCount, rc);
      const computed = readCount >= n ? 'read' : deliveredCount >= n ? 'delivered' : 'sent';
      const status = rank[computed] > rank[m.status] ? computed : m.status;
      if (status === m.status && deliveredCount === m.deliveredCount && readCount === m.readCount) continue;
      const next = { ...m, status, deliveredCount, readCount };
      c.bySeq.set(seq, next);
      this.hooks.onOwnMessage?.(next);
      changed = true;
    }
    if (changed) this.#emit({ type: 'messages', chatId: p.chatId });
  }

  #typingEvent(chatId: string, userId: string, isTyping: boolean): void {
    let users = this.#typing.get(chatId);
    const old = users?.get(userId);
    if (old) clearTimeout(old);
    if (isTyping) {
      if (!users) this.#typing.set(chatId, (users = new Map()));
      const timer = setTimeout(() => this.#typingEvent(chatId, userId, false), TYPING_TTL_MS);
      (timer as any).unref?.();
      users.set(userId, timer);
    } else if (users) {
      users.delete(userId);
      if (!users.size) this.#typing.delete(chatId);
    }
    if (isTyping || old) this.#emit({ type: 'typing', chatId });
  }

  #clearTyping(chatId: string): void {
    for (const timer of this.#typing.get(chatId)?.values() ?? []) clearTimeout(timer);
    this.#typing.delete(chatId);
  }
}

/** Whether `next` is an older snapshot than `cur` (a slow history page after an edit or delete). */
function isOlderSnapshot(next: Message, cur: Message): boolean {
  if (cur.deletedAt && !next.deletedAt) return true;
  if (cur.editedAt && (!next.editedAt || next.editedAt < cur.editedAt)) return true;
  return false;
}
