// The SDK's public data types. Each one is the server's own type, taken from the generated
// files (docs/asyncapi.json → generated/asyncapi.ts, GET /openapi.json → generated/openapi.ts),
// so a field renamed on the server fails `tsc` here; contract-check.ts ties the two documents
// together.

import type * as Async from './generated/asyncapi.js';
import type { components } from './generated/openapi.js';

type Schemas = components['schemas'];

/** A persisted message (Message v2), as events, history and `chat.sync` carry it. */
export type Message = Async.Message;
export type Attachment = Async.Attachment;
export type Reaction = Async.Reaction;
export type User = Async.User;
export type Notification = Async.Notification;
export type Participant = Async.Participant;
/** Per-user chat settings (`GET /chats` and `chat.settings`). */
export type ChatSettings = Schemas['ChatSettings'];
/** A chat as `GET /chats` gives it: the chat, the caller's unread count, last message and settings. */
export type Chat = Async.Chat & {
  unreadCount: Schemas['ChatWithUnread']['unreadCount'];
  lastMessage: Message | null;
  settings: ChatSettings;
};
export type Presence = { status: Async.PresenceUpdateEvent['status']; lastSeenAt: string | null };
/** What `POST /auth/register`, `/auth/login` and `/auth/refresh` answer. */
export type AuthResponse = Schemas['AuthResponse'];
export type UploadTicket = Schemas['UploadTicket'];
export type MessagePage = { messages: Message[]; hasMore: boolean };
export type SearchPage = Schemas['SearchPage'];
export type NotificationPage = Schemas['NotificationPage'];

/** Server → client events, name → payload (from docs/asyncapi.json). */
export type ServerEvents = Async.ServerEvents;
export type ServerEventName = keyof ServerEvents;
/** Client → server events with their acknowledgements. */
export type ClientEvents = Async.ClientEvents;

/** Outbox states of an optimistic send. */
export type OutboxState = 'sending' | 'sent' | 'delivered' | 'read' | 'failed';

/** An optimistic message: in the store from `send()` until `chat.message.saved` replaces it. */
export type PendingMessage = Omit<Message, 'id' | 'sequence' | 'status'> & {
  id: null;
  sequence: null;
  status: 'sent';
  pending: 'sending' | 'failed';
  createdAt: string;
};

/** What `store.messages()` lists: persisted messages, then pending ones. */
export type StoreMessage = (Message & { pending?: undefined }) | PendingMessage;

export type ConnectionState = 'disconnected' | 'connecting' | 'connected';
