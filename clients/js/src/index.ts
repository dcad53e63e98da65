// @courier-chat/client: the public entry point.

export { CourierClient } from './client.js';
export { CourierApi } from './api.js';
export type { CourierClientOptions, ClientEvents } from './client.js';
export { CourierError } from './errors.js';
export { MemoryStorage, IndexedDbStorage } from './storage.js';
export type { OutboxStorage, StoredEntry } from './storage.js';
export type { OutboxEntry, SendInput } from './outbox.js';
export { Store, TYPING_TTL_MS } from './store.js';
export type { StoreChange, StoreHooks } from './store.js';
export type { Transport, TransportHandlers } from './transport.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { TokenManager } from './tokens.js';
export type * from './types.js';
