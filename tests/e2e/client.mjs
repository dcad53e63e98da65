// Socket.IO client: `connect` to namespace /chat of a gateway, and the event-recording
// `ChatClient` it resolves with.

import { io } from 'socket.io-client';

import { settings } from './settings.mjs';

/** A connected Socket.IO client of namespace /chat that records every event it receives. */
export class ChatClient {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    /** Every server -> client event, in arrival order: {event, payload, at}. */
    this.events = [];
    socket.onAny((event, payload) => this.events.push({ event, payload, at: Date.now() }));
  }

  /**
   * Payloads of `event` received so far, optionally only those about `chatId`
   * and/or whose `message.clientMessageId` is `clientMessageId`.
   */
  received(event, { chatId, clientMessageId } = {}) {
    return this.events
      .filter((e) => e.event === event)
      .map((e) => e.payload)
      .filter((p) => chatId === undefined || p?.chatId === chatId)
      .filter((p) => clientMessageId === undefined || p?.message?.clientMessageId === clientMessageId);
  }

  count(event, filter) { return this.received(event, filter).length; }

  /** The `message` of each `chat.message.new` / `.saved` payload received, in arrival order. */
  messages(event, filter) { return this.received(event, filter).map((p) => p?.message); }

  /** Engine.IO transport currently in use: 'polling' or 'websocket'. */
  get transport() { return this.socket.io.engine?.transport?.name; }

  get connected() { return this.socket.connected; }

  /** Emits `event` and resolves with the acknowledgement payload (rejects after `timeoutMs`). */
  ack(event, payload, timeoutMs = 5000) {
    return this.socket.timeout(timeoutMs).emitWithAck(event, payload);
  }

  close() { this.socket.close(); }
}

/**
 * Connects to namespace /chat of the gateway at `url` (path /socket.io) and
 * resolves with a ChatClient on `connect`; rejects with the `connect_error`
 * error (its `.message` is what the server refused with).
 *
 *  - `via`: where the token goes: 'auth' (auth.token), 'header'
 *    (Authorization: Bearer), 'query' (?token=). `token == null` sends none.
 *  - `auth`, `extraHeaders`, `query`: merged in after the token, to build
 *    unusual handshakes (e.g. two tokens in different places).
 *  - `transports`: default ['websocket']; pass ['polling', 'websocket'] for the
 *    browser default (polling first, then upgrade) or ['polling'].
 *
 * It resolves at `connect` with no delay: the server registers the socket (routing
 * state, event handlers) before it sends the CONNECT packet.
 */
export function connect(url, token, {
  transports = ['websocket'], via = 'auth', auth = {}, extraHeaders = {}, query = {},
  label = 'socket', timeoutMs = 10_000,
} = {}) {
  const handshake = { auth: {}, extraHeaders: {}, query: {} };
  if (token != null) {
    if (via === 'auth') handshake.auth.token = token;
    else if (via === 'header') handshake.extraHeaders.authorization = `Bearer ${token}`;
    else if (via === 'query') handshake.query.token = token;
    else throw new Error(`unknown token placement ${via}`);
  }
  Object.assign(handshake.auth, auth);
  Object.assign(handshake.extraHeaders, extraHeaders);
  Object.assign(handshake.query, query);

  const socket = io(`${url}/chat`, {
    path: '/socket.io',
    transports,
    ...handshake,
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
  });
  const client = new ChatClient(socket, label);

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`${label}: no connect within ${timeoutMs} ms`)),
      timeoutMs + 1000);
    const settle = (err) => {
      clearTimeout(timer);
      socket.off('connect', onConnect).off('connect_error', onError);
      if (err) {
        socket.close(); // also releases the Engine.IO connection of a namespace-level refusal
        reject(err);
      } else {
        resolve(client);
      }
    };
    const onConnect = () => settle(null);
    const onError = (err) => settle(err);
    socket.once('connect', onConnect).once('connect_error', onError);
  });
}

// ---------------------------------------------------------------------------
// 6. Deployment
