// Shape checks for the payloads defined in ../shared/contract.md (wire contract v1).
//
// Every check asserts that the fields the contract names are present with the
// contract's types and values. Extra fields are tolerated: the contract says
// "extensions are welcome; changes to what is written here are not".

import assert from 'node:assert/strict';

/** Socket.IO event names (server -> client) used by the tests. */
export const EVENTS = Object.freeze({
  NEW: 'chat.message.new',
  SAVED: 'chat.message.saved',
  STATUS: 'chat.message.status',
});

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 3339 date-time with exactly millisecond precision, e.g. 2024-05-01T10:00:00.123Z. */
export const RFC3339_MILLIS_RE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{2}:\d{2})$/;

/** Any RFC 3339 date-time (fraction optional), for fields the contract does not pin further. */
export const RFC3339_RE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** The fields of `Message`, in contract order. */
export const MESSAGE_FIELDS = Object.freeze([
  'id', 'chatId', 'senderId', 'clientMessageId', 'content',
  'messageType', 'status', 'sequence', 'sentAt', 'deliveredCount', 'readCount',
  // Message v2: always present, null / [] when empty.
  'editedAt', 'deletedAt', 'replyTo', 'forwardedFrom', 'reactions', 'mentions', 'attachments',
  // Set when an incoming webhook posted it.
  'bot',
]);

/**
 * Fields that change as participants receive and read the message, or differ per
 * reader (`reactions[].me`).
 */
const RECEIPT_FIELDS = new Set(['status', 'deliveredCount', 'readCount', 'reactions']);

/**
 * The contract fields of a Message that never change (to compare copies taken at
 * different times, or that carry extensions).
 */
export const pickMessage = (m) => Object.fromEntries(
  MESSAGE_FIELDS.filter((f) => !RECEIPT_FIELDS.has(f)).map((f) => [f,
    // An attachment's url is minted per read: copies differ in it alone.
    f === 'attachments' && Array.isArray(m?.[f]) ? m[f].map(({ url, ...a }) => a) : m?.[f]]));

const show = (v) => JSON.stringify(v);

function assertFields(obj, fields, what) {
  assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj),
    `${what} must be a JSON object, got ${show(obj)}`);
  for (const f of fields) {
    assert.ok(Object.hasOwn(obj, f), `${what} lacks field "${f}": ${show(obj)}`);
  }
}

export function assertUuid(value, what = 'value') {
  assert.match(String(value), UUID_RE, `${what} must be a UUID, got ${show(value)}`);
}

/** A timestamp that is RFC 3339 (optionally with exactly milliseconds) and near now. */
export function assertTimestamp(value, what = 'timestamp', { millis = false, maxSkewMs = 10 * 60_000 } = {}) {
  assert.equal(typeof value, 'string', `${what} must be a string, got ${show(value)}`);
  assert.match(value, millis ? RFC3339_MILLIS_RE : RFC3339_RE,
    `${what} must be RFC 3339${millis ? ' with milliseconds' : ''}, got ${show(value)}`);
  const t = Date.parse(value);
  assert.ok(Number.isFinite(t), `${what} must parse as a date, got ${show(value)}`);
  assert.ok(Math.abs(Date.now() - t) < maxSkewMs, `${what} ${value} is not near the current time`);
}

/** `User` = {id, username, displayName, createdAt}. */
export function assertUser(user, expected = {}) {
  assertFields(user, ['id', 'username', 'displayName', 'createdAt'], 'User');
  assertUuid(user.id, 'User.id');
  assertTimestamp(user.createdAt, 'User.createdAt');
  for (const [k, v] of Object.entries(expected)) assert.equal(user[k], v, `User.${k}`);
}

/** The 201/200 body of /auth/register, /auth/login and /auth/refresh. */
export function assertAuthResponse(body, expectedUser = {}) {
  assertFields(body, ['user', 'accessToken', 'refreshToken', 'expiresIn'], 'auth response');
  assertUser(body.user, expectedUser);
  assert.equal(typeof body.accessToken, 'string', 'accessToken');
  assert.equal(body.accessToken.split('.').length, 3, 'accessToken must be a JWT');
  assert.equal(typeof body.refreshToken, 'string', 'refreshToken');
  assert.ok(body.refreshToken.length > 0, 'refreshToken must not be empty');
  assert.ok(Number.isInteger(body.expiresIn) && body.expiresIn > 0, `expiresIn, got ${show(body.expiresIn)}`);
}

/**
 * `Chat` = {id, type, title, participants: [{userId, role, joinedAt}], createdAt, lastSequence}.
 * `expected.participantIds` (any order) and `expected.owner` are checked when given.
 */
export function assertChat(chat, expected = {}) {
  assertFields(chat, ['id', 'type', 'title', 'participants', 'createdAt', 'lastSequence'], 'Chat');
  assertUuid(chat.id, 'Chat.id');
  assert.ok(['direct', 'group'].includes(chat.type), `Chat.type, got ${show(chat.type)}`);
  assert.ok(chat.title === null || typeof chat.title === 'string', `Chat.title, got ${show(chat.title)}`);
  assertTimestamp(chat.createdAt, 'Chat.createdAt');
  assert.ok(Number.isInteger(chat.lastSequence) && chat.lastSequence >= 0,
    `Chat.lastSequence, got ${show(chat.lastSequence)}`);
  assert.ok(Array.isArray(chat.participants), 'Chat.participants must be an array');
  for (const p of chat.participants) {
    assertFields(p, ['userId', 'role', 'joinedAt'], 'Chat participant');
    assertUuid(p.userId, 'participant.userId');
    assert.ok(['owner', 'admin', 'member'].includes(p.role), `participant.role, got ${show(p.role)}`);
    assertTimestamp(p.joinedAt, 'participant.joinedAt');
  }
  if (expected.type !== undefined) assert.equal(chat.type, expected.type, 'Chat.type');
  if (expected.title !== undefined) assert.equal(chat.title, expected.title, 'Chat.title');
  if (expected.participantIds) {
    assert.deepEqual(
      chat.participants.map((p) => p.userId).sort(),
      [...expected.participantIds].sort(),
      'Chat.participants user ids',
    );
  }
  if (expected.owner) {
    const owner = chat.participants.find((p) => p.userId === expected.owner);
    assert.equal(owner?.role, 'owner', 'the creator of a group is its owner');
  }
}

/**
 * `Message` = {id, chatId, senderId, clientMessageId, content, messageType: "text",
 * status: "sent"|"delivered"|"read", deliveredCount, readCount, sequence,
 * sentAt (RFC 3339 with milliseconds)}.
 * Every key of `expected` (chatId, senderId, clientMessageId, content, sequence, id) must match.
 */
export function assertMessage(message, expected = {}) {
  assertFields(message, MESSAGE_FIELDS, 'Message');
  assertUuid(message.id, 'Message.id');
  assertUuid(message.chatId, 'Message.chatId');
  assertUuid(message.senderId, 'Message.senderId');
  assertUuid(message.clientMessageId, 'Message.clientMessageId');
  assert.equal(typeof message.content, 'string', 'Message.content');
  assert.equal(message.messageType, 'text', 'Message.messageType');
  assert.ok(['sent', 'delivered', 'read'].includes(message.status),
    `Message.status must be sent, delivered or read, got ${show(message.status)}`);
  assert.ok(Number.isInteger(message.deliveredCount) && Number.isInteger(message.readCount)
    && message.readCount >= 0 && message.readCount <= message.deliveredCount,
  `Message.deliveredCount >= readCount >= 0, got ${show([message.deliveredCount, message.readCount])}`);
  assert.ok(Number.isInteger(message.sequence) && message.sequence >= 1,
    `Message.sequence must be an integer >= 1, got ${show(message.sequence)}`);
  assertTimestamp(message.sentAt, 'Message.sentAt', { millis: true });
  for (const f of ['editedAt', 'deletedAt']) {
    if (message[f] !== null) assertTimestamp(message[f], `Message.${f}`, { millis: true });
  }
  for (const f of ['reactions', 'mentions', 'attachments']) {
    assert.ok(Array.isArray(message[f]), `Message.${f} must be an array, got ${show(message[f])}`);
  }
  for (const a of message.attachments) assertAttachment(a);
  for (const r of message.reactions) {
    assert.ok(typeof r.emoji === 'string' && Number.isInteger(r.count) && r.count > 0
      && typeof r.me === 'boolean', `Message.reactions entry ${show(r)}`);
  }
  for (const [k, v] of Object.entries(expected)) {
    if (v !== undefined) assert.equal(message[k], v, `Message.${k}`);
  }
}

/** `Attachment` = {id, fileName, contentType, size, url} (url: a presigned GET). */
export function assertAttachment(a) {
  assertFields(a, ['id', 'fileName', 'contentType', 'size', 'url'], 'Attachment');
  assertUuid(a.id, 'Attachment.id');
  assert.ok(typeof a.fileName === 'string' && a.fileName.length > 0, `Attachment.fileName ${show(a)}`);
  assert.match(a.contentType, /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+/, `Attachment.contentType ${show(a)}`);
  assert.ok(Number.isInteger(a.size) && a.size > 0, `Attachment.size ${show(a)}`);
  assert.equal(typeof a.url, 'string', `Attachment.url ${show(a)}`);
}

/** `chat.message.new` / `chat.message.saved` payload: {chatId, message: Message}. */
export function assertMessageEvent(payload, expected = {}) {
  assertFields(payload, ['chatId', 'message'], 'message event payload');
  if (expected.chatId !== undefined) assert.equal(payload.chatId, expected.chatId, 'event chatId');
  assertMessage(payload.message, expected);
  assert.equal(payload.message.chatId, payload.chatId, 'event chatId must equal message.chatId');
}

/** 202 body of POST /chats/:chatId/messages: {brokerMessageId, clientMessageId}. */
export function assertSendAccepted(res, clientMessageId) {
  assert.equal(res.status, 202, `send must answer 202, got ${res.status} ${show(res.body)}`);
  assertFields(res.body, ['brokerMessageId', 'clientMessageId'], 'send response');
  assertUuid(res.body.brokerMessageId, 'brokerMessageId');
  assert.equal(res.body.clientMessageId, clientMessageId, 'send response clientMessageId');
}

/** Error body: {statusCode, error, code, message} with the expected HTTP status and code. */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected HTTP ${status} (${code}), got ${res.status} ${show(res.body)}`);
  assertFields(res.body, ['statusCode', 'error', 'code', 'message'], 'error body');
  assert.equal(res.body.statusCode, status, 'error statusCode');
  assert.equal(typeof res.body.error, 'string', 'error.error');
  assert.equal(res.body.code, code, 'error code');
  assert.ok(['string', 'object'].includes(typeof res.body.message), 'error message');
}
