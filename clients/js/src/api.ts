// CourierApi: the REST half of the SDK, the base of CourierClient. It owns the token holder,
// the REST caller and the store (whose gap filling and user lookups go through REST), and the
// convenience calls that fill the store: chats, history, pins, presence, notifications,
// edits, deletes, reactions, pins, search and uploads. No socket here.

import { Rest, type FetchLike } from './rest.js';
import { Store } from './store.js';
import { TokenManager } from './tokens.js';
import type { AuthResponse, Chat, Message, User } from './types.js';

export class CourierApi {
  readonly store: Store;
  readonly rest: Rest;
  /** The signed-in user (from `GET /users/me` at the first connect). */
  userId: string | null = null;
  me: User | null = null;
  protected readonly tokens: TokenManager;

  constructor(baseUrl: string, getToken: () => Promise<string>, fetchFn: FetchLike) {
    this.tokens = new TokenManager(getToken);
    this.rest = new Rest(baseUrl, this.tokens, fetchFn);
    this.store = new Store({
      me: () => this.userId,
      fetchAfter: (chatId, after) => this.rest.json('GET', `/chats/${chatId}/messages?after=${after}&limit=100`),
      fetchUser: (userId) => this.rest.json('GET', `/users/${userId}`),
      onOwnMessage: (m) => this.ownMessage(m),
      onError: (err) => this.reportError(err),
    });
  }

  /** A message of the signed-in user was stored or changed (the client's outbox follows it). */
  protected ownMessage(_m: Message): void {}

  /** A non-fatal problem (the client emits `error`). */
  protected reportError(_err: unknown): void {}

  // ---- static helpers (no token) -------------------------------------------------------

  static register(baseUrl: string, body: { username: string; password: string; displayName?: string },
    opts: { fetch?: FetchLike } = {}): Promise<AuthResponse> {
    return Rest.anonymous(baseUrl, 'POST', '/auth/register', body, opts.fetch);
  }

  static login(baseUrl: string, body: { username: string; password: string }, opts: { fetch?: FetchLike } = {}): Promise<AuthResponse> {
    return Rest.anonymous(baseUrl, 'POST', '/auth/login', body, opts.fetch);
  }

  static refresh(baseUrl: string, refreshToken: string, opts: { fetch?: FetchLike } = {}): Promise<AuthResponse> {
    return Rest.anonymous(baseUrl, 'POST', '/auth/refresh', { refreshToken }, opts.fetch);
  }

  // ---- REST ----------------------------------------------------------------------------

  /** JSON request with the bearer token; one refresh-and-retry on 401; throws CourierError. */
  request(method: string, path: string, body?: unknown): Promise<any> {
    return this.rest.json(method, path, body);
  }

  createDirectChat(userId: string) {
    return this.chatResult(this.request('POST', '/chats', { type: 'direct', participantIds: [userId] }));
  }

  createGroup(title: string, userIds: string[]) {
    return this.chatResult(this.request('POST', '/chats', { type: 'group', title, participantIds: userIds }));
  }

  searchUsers(q: string, opts: { limit?: number; cursor?: string } = {}) {
    return this.request('GET', `/users/search${query({ q, ...opts })}`);
  }

  searchMessages(q: string, opts: { chatId?: string; limit?: number; cursor?: string } = {}) {
    return this.request('GET', `/search/messages${query({ q, ...opts })}`);
  }

  async notifications(opts: { unread?: boolean; limit?: number; before?: string } = {}) {
    const page = await this.request('GET', `/notifications${query(opts)}`);
    this.store.setNotifications(page.notifications);
    return page;
  }

  markNotificationsRead(ids: string[] | 'all'): Promise<void> {
    return this.request('POST', '/notifications/read', ids === 'all' ? { all: true } : { ids });
  }

  /** `GET /chats` into the store. */
  async loadChats(): Promise<Chat[]> {
    const body = await this.request('GET', '/chats');
    this.store.setChats(body.chats);
    return this.store.chats();
  }

  /** A page of history into the store: the newest, or the one before `before`. */
  async loadHistory(chatId: string, opts: { before?: number; limit?: number } = {}): Promise<{ messages: Message[]; hasMore: boolean }> {
    const page = await this.request('GET', `/chats/${chatId}/messages${query({ limit: opts.limit ?? 50, before: opts.before })}`);
    this.store.addHistory(chatId, page.messages, page.hasMore, opts.before === undefined ? 'latest' : 'before');
    return page;
  }

  /** `GET /chats/:chatId/pins` into `store.pins()`. */
  async loadPins(chatId: string): Promise<Message[]> {
    const body = await this.request('GET', `/chats/${chatId}/pins`);
    this.store.setPins(chatId, body.messages.map((m: Message) => m.id));
    return body.messages;
  }

  async markRead(chatId: string, sequence: number): Promise<void> {
    await this.request('POST', `/chats/${chatId}/read`, { sequence });
    this.store.markRead(chatId, sequence);
  }

  edit(chatId: string, messageId: string, content: string): Promise<unknown> {
    return this.request('PATCH', `/chats/${chatId}/messages/${messageId}`, { content });
  }

  deleteMessage(chatId: string, messageId: string): Promise<unknown> {
    return this.request('DELETE', `/chats/${chatId}/messages/${messageId}`);
  }

  react(chatId: string, messageId: string, emoji: string, on = true): Promise<void> {
    return this.request(on ? 'PUT' : 'DELETE', `/chats/${chatId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }

  pin(chatId: string, messageId: string, on = true): Promise<void> {
    return this.request(on ? 'PUT' : 'DELETE', `/chats/${chatId}/pins/${messageId}`);
  }

  /** `POST /users/presence` into the store. */
  async presence(userIds: string[]) {
    const body = await this.request('POST', '/users/presence', { userIds });
    for (const p of body.presence) this.store.setPresence(p.userId, { status: p.status, lastSeenAt: p.lastSeenAt ?? null });
    return body.presence;
  }

  /** Announces a file (`POST /uploads`), PUTs its bytes; resolves the id to send as `attachments`. */
  async upload(file: Blob | { name: string; type: string; data: Uint8Array }, _opts: { chatId?: string } = {}): Promise<string> {
    const isBlob = typeof Blob !== 'undefined' && file instanceof Blob;
    const name = isBlob ? ((file as File).name || 'file') : (file as { name: string }).name;
    const type = (isBlob ? (file as Blob).type : (file as { type: string }).type) || 'application/octet-stream';
    const size = isBlob ? (file as Blob).size : (file as { data: Uint8Array }).data.byteLength;
    const ticket = await this.request('POST', '/uploads', { fileName: name, contentType: type, size });
    const body = isBlob ? file as Blob : (file as { data: Uint8Array }).data;
    await this.rest.put(ticket.uploadUrl, ticket.method ?? 'PUT', ticket.headers ?? {}, body as BodyInit);
    return ticket.id;
  }

  protected chatResult(p: Promise<any>): Promise<any> {
    return p.then((chat) => { this.store.upsertChat(chat); return this.store.chat(chat.id) ?? chat; });
  }
}

/** `?a=1&b=2` of the defined values. */
export function query(params: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
