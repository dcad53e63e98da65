// Compile-time checks that the SDK's types and the two server documents agree: the same
// field names in the AsyncAPI and OpenAPI schemas of each shared type, and the AsyncAPI
// type assignable to the OpenAPI one. A renamed or dropped field fails `tsc`. No runtime code.

import type * as Async from './generated/asyncapi.js';
import type { components } from './generated/openapi.js';
import type { Chat, Message, MessagePage } from './types.js';

type Schemas = components['schemas'];
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Assignable<A, B> = [A] extends [B] ? true : false;
type Ok<T extends true> = T;

export type ContractChecks = [
  Ok<SameKeys<Async.Message, Schemas['Message']>>,
  Ok<Assignable<Async.Message, Schemas['Message']>>,
  Ok<SameKeys<Async.User, Schemas['User']>>,
  Ok<Assignable<Async.User, Schemas['User']>>,
  Ok<SameKeys<Async.Chat, Schemas['Chat']>>,
  Ok<SameKeys<Async.Participant, Schemas['Participant']>>,
  Ok<SameKeys<Async.Attachment, Schemas['Attachment']>>,
  Ok<SameKeys<Async.Reaction, Schemas['Reaction']>>,
  Ok<SameKeys<Async.Notification, Schemas['Notification']>>,
  Ok<Assignable<Async.Notification, Schemas['Notification']>>,
  Ok<SameKeys<Async.ChatSettingsEvent['settings'], Schemas['ChatSettings']>>,
  Ok<SameKeys<Chat, Schemas['ChatWithUnread']>>,
  Ok<Assignable<Chat, Schemas['ChatWithUnread']>>,
  Ok<SameKeys<MessagePage, Schemas['MessagePage']>>,
  Ok<Assignable<Message, Schemas['Message']>>,
  Ok<SameKeys<Async.ChatMessageDeletedEvent, Schemas['ChatMessageDeletedEvent'] & { offset: string }>>,
  Ok<SameKeys<Async.ChatReactionUpdatedEvent, Schemas['ChatReactionUpdatedEvent'] & { offset: string }>>,
  Ok<SameKeys<Async.ChatPinsUpdatedEvent, Schemas['ChatPinsUpdatedEvent'] & { offset: string }>>,
];
