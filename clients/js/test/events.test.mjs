// Event application: edits, deletes (tombstones), reactions with `me`, pins, receipts
// (status of own messages), typing with its 6 s expiry, presence, chat changes, settings,
// notifications, users, unread counts.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Store } from '../dist/index.js';
import { BOB, CAROL, CHAT, ME, chat, msg, user } from './fakes.mjs';

function makeStore(own = []) {
  return new Store({ me: () => ME, fetchAfter: async () => ({ messages: [], hasMore: false }), onOwnMessage: (m) => own.push(m) });
}

test('edit replaces the message; delete leaves a tombstone with its sequence', () => {
  const store = makeStore();
  store.setChats([chat({ lastSequence: 0 })]);
  store.addMessages([msg(1), msg(2, { reactions: [{ emoji: 'x', count: 1, me: false }], mentions: [ME] })]);
  store.apply('chat.message.updated', { offset: '1-0', chatId: CHAT, message: msg(1, { content: 'edited', editedAt: '2026-01-02T00:00:00.000Z' }) });
  assert.equal(store.messages(CHAT)[0].content, 'edited');
  store.apply('chat.message.deleted', { offset: '1-1', chatId: CHAT, messageId: msg(2).id, sequence: 2 });
  const t = store.messages(CHAT)[1];
  assert.equal(t.sequence, 2);
  assert.equal(t.content, '');
  assert.ok(t.deletedAt);
  assert.deepEqual([t.reactions, t.mentions, t.attachments], [[], [], []]);
  assert.equal(store.chat(CHAT).lastMessage.content, '', 'the chat list shows the tombstone');
});

test('reactions: counts from the event, `me` only for the signed-in user', () => {
  const store = makeStore();
  store.addMessages([msg(1)]);
  const id = msg(1).id;
  const r = () => store.message(CHAT, id).reactions;
  store.apply('chat.reaction.updated', { chatId: CHAT, messageId: id, emoji: '👍', userId: BOB, added: true, count: 1 });
  assert.deepEqual(r(), [{ emoji: '👍', count: 1, me: false }]);
  store.apply('chat.reaction.updated', { chatId: CHAT, messageId: id, emoji: '👍', userId: ME, added: true, count: 2 });
  assert.deepEqual(r(), [{ emoji: '👍', count: 2, me: true }]);
  store.apply('chat.reaction.updated', { chatId: CHAT, messageId: id, emoji: 'fire', userId: ME, added: true, count: 1 });
  store.apply('chat.reaction.updated', { chatId: CHAT, messageId: id, emoji: '👍', userId: BOB, added: false, count: 1 });
  assert.deepEqual(r(), [{ emoji: '👍', count: 1, me: true }, { emoji: 'fire', count: 1, me: true }]);
  store.apply('chat.reaction.updated', { chatId: CHAT, messageId: id, emoji: '👍', userId: ME, added: false, count: 0 });
  assert.deepEqual(r(), [{ emoji: 'fire', count: 1, me: true }]);
});

test('pins follow chat.pins.updated', () => {
  const store = makeStore();
  store.apply('chat.pins.updated', { chatId: CHAT, messageId: 'a', pinned: true, userId: BOB });
  store.apply('chat.pins.updated', { chatId: CHAT, messageId: 'b', pinned: true, userId: ME });
  store.apply('chat.pins.updated', { chatId: CHAT, messageId: 'a', pinned: false, userId: BOB });
  assert.deepEqual([...store.pins(CHAT)], ['b']);
});

test('receipts: chat.message.status moves own messages to delivered, then read (never back)', () => {
  const own = [];
  const store = makeStore(own);
  store.setChats([chat()]);
  store.addMessages([msg(1, { senderId: ME }), msg(2), msg(3, { senderId: ME })]);
  store.apply('chat.message.status', { chatId: CHAT, userId: BOB, status: 'delivered', sequence: 3 });
  assert.deepEqual(store.messages(CHAT).map((m) => m.status), ['delivered', 'sent', 'delivered']);
  store.apply('chat.message.status', { chatId: CHAT, userId: BOB, status: 'read', sequence: 1 });
  assert.deepEqual(store.messages(CHAT).map((m) => m.status), ['read', 'sent', 'delivered']);
  store.apply('chat.message.status', { chatId: CHAT, userId: BOB, status: 'delivered', sequence: 1 });
  assert.equal(store.messages(CHAT)[0].status, 'read');
  assert.equal(store.messages(CHAT)[0].readCount, 1);
  assert.ok(own.some((m) => m.sequence === 3 && m.status === 'delivered'), 'the outbox hears of it');
});

test('receipts in a group: read only once every other participant read it', () => {
  const store = makeStore();
  store.setChats([chat({ type: 'group', participants: [ME, BOB, CAROL].map((userId) => ({ userId, role: 'member', joinedAt: 'x' })) })]);
  store.addMessages([msg(1, { senderId: ME })]);
  store.apply('chat.message.status', { chatId: CHAT, userId: BOB, status: 'read', sequence: 1 });
  assert.deepEqual([store.messages(CHAT)[0].status, store.messages(CHAT)[0].readCount], ['sent', 1]);
  store.apply('chat.message.status', { chatId: CHAT, userId: CAROL, status: 'delivered', sequence: 1 });
  assert.equal(store.messages(CHAT)[0].status, 'delivered');
  store.apply('chat.message.status', { chatId: CHAT, userId: CAROL, status: 'read', sequence: 1 });
  assert.deepEqual([store.messages(CHAT)[0].status, store.messages(CHAT)[0].readCount], ['read', 2]);
});

test('typing: shown until false, a message from the typist, or 6 s without a refresh', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const store = makeStore();
  store.apply('chat.typing', { chatId: CHAT, userId: BOB, isTyping: true });
  store.apply('chat.typing', { chatId: CHAT, userId: CAROL, isTyping: true });
  assert.deepEqual(store.typing(CHAT).sort(), [BOB, CAROL].sort());
  t.mock.timers.tick(4000);
  store.apply('chat.typing', { chatId: CHAT, userId: BOB, isTyping: true }); // refresh
  t.mock.timers.tick(2500);
  assert.deepEqual(store.typing(CHAT), [BOB], 'carol expired after 6 s');
  store.apply('chat.message.new', { chatId: CHAT, message: msg(1, { senderId: BOB }) });
  assert.deepEqual(store.typing(CHAT), [], 'a message ends typing');
  store.apply('chat.typing', { chatId: CHAT, userId: CAROL, isTyping: true });
  store.apply('chat.typing', { chatId: CHAT, userId: CAROL, isTyping: false });
  assert.deepEqual(store.typing(CHAT), []);
});

test('presence, users and notifications', () => {
  const store = makeStore();
  store.apply('presence.update', { userId: BOB, status: 'online', lastSeenAt: '2026-01-01T00:00:00.000Z' });
  assert.deepEqual(store.presence(BOB), { status: 'online', lastSeenAt: '2026-01-01T00:00:00.000Z' });
  store.apply('presence.update', { userId: BOB, status: 'offline', lastSeenAt: '2026-01-01T00:01:00.000Z' });
  assert.equal(store.presence(BOB).status, 'offline');
  store.apply('user.updated', { user: { ...user(BOB, 'bob'), displayName: 'Bobby' } });
  assert.equal(store.user(BOB).displayName, 'Bobby');
  const n = { id: 'n1', type: 'mention', chatId: CHAT, messageId: 'm', senderId: BOB, excerpt: 'hi', createdAt: 'x', readAt: null };
  store.apply('notification.new', { offset: '1-0', notification: n });
  store.apply('notification.new', { offset: '1-0', notification: n });
  assert.deepEqual(store.notifications(), [n]);
});

test('chat changes: chat.updated merges, chat.settings, chat.removed drops; unread counts and order', () => {
  const store = makeStore();
  const other = '00000000-0000-4000-8000-0000000000c2';
  store.setChats([chat({ unreadCount: 2, lastSequence: 2 }), chat({ id: other, createdAt: '2026-01-05T00:00:00.000Z' })]);
  assert.deepEqual(store.chats().map((c) => c.id), [other, CHAT]);
  store.apply('chat.message.new', { chatId: CHAT, message: msg(3, { sentAt: '2026-02-01T00:00:00.000Z' }) });
  assert.deepEqual(store.chats().map((c) => c.id), [CHAT, other], 'a new message moves the chat up');
  assert.equal(store.chat(CHAT).unreadCount, 3);
  store.apply('chat.message.new', { chatId: CHAT, message: msg(3, { sentAt: '2026-02-01T00:00:00.000Z' }) });
  assert.equal(store.chat(CHAT).unreadCount, 3, 'a replay does not count twice');
  store.markRead(CHAT, 3);
  assert.equal(store.chat(CHAT).unreadCount, 0);
  store.apply('chat.updated', { chat: { ...chat({ id: CHAT, lastSequence: 3 }), title: 'renamed', unreadCount: undefined, lastMessage: undefined, settings: undefined } });
  assert.equal(store.chat(CHAT).title, 'renamed');
  assert.equal(store.chat(CHAT).lastMessage.sequence, 3, 'kept from before');
  store.apply('chat.settings', { chatId: CHAT, settings: { mutedUntil: null, archived: true, muteMentions: false } });
  assert.equal(store.chat(CHAT).settings.archived, true);
  const added = chat({ id: '00000000-0000-4000-8000-0000000000c3', type: 'group', title: 'new group' });
  delete added.unreadCount; delete added.lastMessage; delete added.settings;
  store.apply('chat.updated', { chat: added });
  assert.equal(store.chat(added.id).unreadCount, 0);
  assert.deepEqual(store.chat(added.id).settings, { mutedUntil: null, archived: false, muteMentions: false });
  store.apply('chat.removed', { chatId: CHAT });
  assert.equal(store.chat(CHAT), undefined);
  assert.deepEqual(store.messages(CHAT), []);
});
