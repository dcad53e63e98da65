// REST helpers of a deployment: `api` (one HTTP request) and the calls tests make
// (`register`, `createDirect`, `createGroup`, `send`, `history`, `listChats`, ...).
// `Deployment` (deployment.mjs) extends `RestClient`, so tests call them as
// `d.register(...)`; they only need `this.apiUrl`.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { assertAuthResponse, assertChat, assertSendAccepted } from './contract.mjs';
import { PASSWORD } from './settings.mjs';
import { uniqueUsername } from './util.mjs';

/** Calls of Courier's REST API at `this.apiUrl` (set by the subclass, `Deployment`). */
export class RestClient {
  /**
   * One HTTP request to the REST API. `body` is sent as JSON; `rawBody` as is
   * (set the content-type yourself). Resolves {status, body, headers} where
   * body is parsed JSON when the response says so, else text (null when empty).
   */
  async api(method, urlPath, { token, body, headers = {}, rawBody, baseUrl = this.apiUrl } = {}) {
    const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    if (token) h.authorization = `Bearer ${token}`;
    let payload;
    if (rawBody !== undefined) payload = rawBody;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${urlPath}`,
      { method, headers: h, body: payload, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let parsed = text === '' ? null : text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    }
    return { status: res.status, body: parsed, headers: Object.fromEntries(res.headers) };
  }

  /** Registers a fresh user; resolves {user, accessToken, refreshToken, expiresIn, username, password}. */
  async register(base = 'user') {
    const username = uniqueUsername(base);
    const res = await this.api('POST', '/auth/register',
      { body: { username, password: PASSWORD, displayName: base } });
    assert.equal(res.status, 201, `register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    assertAuthResponse(res.body, { username });
    return { ...res.body, username, password: PASSWORD };
  }

  /** Registers one user per name, in parallel. */
  registerAll(...names) { return Promise.all(names.map((n) => this.register(n))); }

  /** Creates (201) or gets (200) the direct chat of the caller and `otherId`. */
  async createDirect(token, otherId) {
    const res = await this.api('POST', '/chats',
      { token, body: { type: 'direct', participantIds: [otherId] } });
    assert.ok([200, 201].includes(res.status), `create direct chat: ${res.status} ${JSON.stringify(res.body)}`);
    assertChat(res.body, { type: 'direct' });
    assert.ok(res.body.participants.some((p) => p.userId === otherId), 'direct chat includes the other user');
    return res.body;
  }

  /** Creates a group chat titled `title` with `participantIds` (the caller becomes owner). */
  async createGroup(token, title, participantIds) {
    const res = await this.api('POST', '/chats',
      { token, body: { type: 'group', title, participantIds } });
    assert.equal(res.status, 201, `create group chat: ${res.status} ${JSON.stringify(res.body)}`);
    assertChat(res.body, { type: 'group', title });
    return res.body;
  }

  /**
   * POST /chats/:chatId/messages and asserts the 202 body; resolves
   * {brokerMessageId, clientMessageId, content}.
   */
  async send(token, chatId, content, clientMessageId = randomUUID()) {
    const res = await this.sendRaw(token, chatId, content, clientMessageId);
    assertSendAccepted(res, clientMessageId);
    return { brokerMessageId: res.body.brokerMessageId, clientMessageId, content };
  }

  /** POST /chats/:chatId/messages without assertions; resolves the raw response. */
  sendRaw(token, chatId, content, clientMessageId = randomUUID()) {
    return this.api('POST', `/chats/${chatId}/messages`, { token, body: { content, clientMessageId } });
  }

  /** GET /chats/:chatId/messages with `query` (limit/before/after); asserts 200. */
  async history(token, chatId, query = {}) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    const res = await this.api('GET', `/chats/${chatId}/messages${qs ? `?${qs}` : ''}`, { token });
    assert.equal(res.status, 200, `history: ${res.status} ${JSON.stringify(res.body)}`);
    assert.ok(Array.isArray(res.body?.messages), `history body: ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.hasMore, 'boolean', 'history hasMore');
    return res.body;
  }

  /** GET /chats; asserts 200 and resolves the array of chats (each with unreadCount). */
  async listChats(token) {
    const res = await this.api('GET', '/chats', { token });
    assert.equal(res.status, 200, `list chats: ${res.status} ${JSON.stringify(res.body)}`);
    assert.ok(Array.isArray(res.body?.chats), `list chats body: ${JSON.stringify(res.body)}`);
    return res.body.chats;
  }

  /** The caller's entry for `chatId` in GET /chats. */
  async chatEntry(token, chatId) {
    const entry = (await this.listChats(token)).find((c) => c.id === chatId);
    assert.ok(entry, `chat ${chatId} missing from GET /chats`);
    assertChat(entry);
    assert.ok(Number.isInteger(entry.unreadCount), `unreadCount, got ${JSON.stringify(entry.unreadCount)}`);
    return entry;
  }
}
