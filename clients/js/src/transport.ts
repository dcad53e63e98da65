// Transports: one connection attempt at a time, reporting to the client's state machine.
// SocketIoTransport: socket.io-client on namespace /chat with its own reconnection off (the
// client owns backoff); SseTransport: GET /events (EventSource), actions go through REST.

import { io, type Socket } from 'socket.io-client';

export interface TransportHandlers {
  /** The connection opened (events, then `session.recovered`, follow). */
  onOpen(): void;
  /** Every server event, in order. */
  onEvent(name: string, payload: any): void;
  /** The attempt failed before opening (`unauthorized`, `session_revoked`, ...). */
  onFail(reason: string): void;
  /** An open connection closed. */
  onClose(reason: string): void;
}

export interface Transport {
  readonly kind: 'socketio' | 'sse';
  open(token: string, offset: string | null): void;
  close(): void;
  /** Client → server event with acknowledgement (Socket.IO only). */
  emitWithAck?(name: string, payload: unknown, timeoutMs?: number): Promise<any>;
}

export class SocketIoTransport implements Transport {
  readonly kind = 'socketio';
  #socket: Socket | null = null;
  #auth: { token: string; offset?: string } = { token: '' };
  #opened = false;

  constructor(private readonly url: string, private readonly h: TransportHandlers,
    private readonly options: { transports?: ('websocket' | 'polling')[]; WebSocket?: unknown } = {}) {}

  open(token: string, offset: string | null): void {
    this.#auth = offset ? { token, offset } : { token };
    if (!this.#socket) {
      const socket = io(`${this.url.replace(/\/$/, '')}/chat`, {
        path: '/socket.io',
        autoConnect: false,
        reconnection: false,
        forceNew: true,
        transports: this.options.transports ?? ['polling', 'websocket'],
        auth: (cb: (data: object) => void) => cb({ ...this.#auth }),
        ...(this.options.WebSocket ? { WebSocket: this.options.WebSocket as any } : {}),
      } as any);
      socket.on('connect', () => { this.#opened = true; this.h.onOpen(); });
      socket.on('connect_error', (err: Error) => { if (this.#socket === socket) this.h.onFail(err.message || 'connect_error'); });
      socket.on('disconnect', (reason: string) => {
        const was = this.#opened;
        this.#opened = false;
        if (this.#socket === socket && was) this.h.onClose(reason);
      });
      socket.onAny((name: string, payload: unknown) => this.h.onEvent(name, payload));
      this.#socket = socket;
    }
    this.#socket.connect();
  }

  close(): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#opened = false;
    if (socket) { socket.offAny(); socket.removeAllListeners(); socket.disconnect(); }
  }

  async emitWithAck(name: string, payload: unknown, timeoutMs = 10_000): Promise<any> {
    if (!this.#socket?.connected) throw new Error(`${name}: not connected`);
    return this.#socket.timeout(timeoutMs).emitWithAck(name, payload);
  }
}

/** The events an SSE stream carries (docs/asyncapi.json, channel /events). */
export const SSE_EVENTS = [
  'chat.message.new', 'chat.message.saved', 'chat.message.status', 'chat.typing', 'presence.update',
  'session.recovered', 'chat.message.updated', 'chat.message.deleted', 'chat.reaction.updated',
  'chat.pins.updated', 'chat.updated', 'chat.removed', 'notification.new', 'chat.settings',
  'user.updated', 'auth.revoked',
] as const;

export class SseTransport implements Transport {
  readonly kind = 'sse';
  #es: any = null;

  constructor(private readonly url: string, private readonly h: TransportHandlers,
    private readonly EventSourceCtor: any) {
    if (!EventSourceCtor) throw new Error("transport 'sse' needs EventSource (pass `eventSource` in the options on Node)");
  }

  open(token: string, offset: string | null): void {
    this.close();
    const u = new URL('/events', this.url);
    u.searchParams.set('token', token);
    if (offset) u.searchParams.set('lastEventId', offset);
    const es = new this.EventSourceCtor(u.toString());
    let opened = false;
    es.onopen = () => { opened = true; this.h.onOpen(); };
    es.onerror = (err: any) => {
      if (this.#es !== es) return;
      es.close();
      this.#es = null;
      const reason = err?.code === 401 || err?.status === 401 ? 'unauthorized' : 'stream error';
      if (opened) this.h.onClose(reason); else this.h.onFail(reason);
    };
    for (const name of SSE_EVENTS) {
      es.addEventListener(name, (e: any) => {
        if (this.#es !== es) return;
        let payload: any;
        try { payload = JSON.parse(e.data); } catch { return; }
        if (e.lastEventId && payload && typeof payload === 'object' && !payload.offset && name !== 'session.recovered') {
          payload.offset = e.lastEventId;
        }
        this.h.onEvent(name, payload);
      });
    }
    this.#es = es;
  }

  close(): void {
    const es = this.#es;
    this.#es = null;
    if (es) es.close();
  }
}
