// The store's ordering: dedupe by sequence and id, ascending order, gaps filled from history
// before later messages show, older history pages, optimistic messages last.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Store } from '../dist/index.js';
import { CHAT, ME, chat, msg, until } from './fakes.mjs';

function makeStore(fetchAfter = async () => ({ messages: [], hasMore: false })) {
  const calls = [];
  const store = new Store({
    me: () => ME,
    fetchAfter: async (chatId, after) => { calls.push({ chatId, after }); return fetchAfter(chatId, after); },
  });
  return { store, calls };
}

const seqs = (store, chatId = CHAT) => store.messages(chatId).map((m) => m.sequence);

test('duplicates (same sequence, replays) are dropped; order is by sequence', () => {
  const { store, calls } = makeStore();
  store.apply('chat.message.new', { chatId: CHAT, message: msg(1) });
  store.apply('chat.message.new', { chatId: CHAT, message: msg(2) });
  store.apply('chat.message.new', { chatId: CHAT, message: msg(2) });
  store.addMessages([msg(1), msg(2), msg(3)]);
  store.apply('chat.message.new', { chatId: CHAT, message: msg(3) });
  assert.deepEqual(seqs(store), [1, 2, 3]);
  assert.equal(store.lastSequence(CHAT), 3);
  assert.equal(calls.length, 0, 'no gap, no fetch');
});

test('a gap fetches ?after=last (following hasMore) before the later message shows', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const { store, calls } = makeStore(async (chatId, after) => {
    await gate;
    return after === 2 ? { messages: [msg(3), msg(4)], hasMore: true } : { messages: [msg(5), msg(6)], hasMore: false };
  });
  store.addMessages([msg(1), msg(2)]);
  store.apply('chat.message.new', { chatId: CHAT, message: msg(6) });
  store.apply('chat.message.new', { chatId: CHAT, message: msg(7) });
  assert.deepEqual(seqs(store), [1, 2], '6 and 7 wait behind the gap');
  assert.deepEqual(calls, [{ chatId: CHAT, after: 2 }], 'one fill at a time');
  release();
  await until('filled', () => seqs(store).length === 7);
  assert.deepEqual(seqs(store), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(calls.map((c) => c.after), [2, 4]);
});

test('a failed gap fetch is reported and retried', async () => {
  let n = 0;
  const errors = [];
  const store = new Store({
    me: () => ME,
    fetchAfter: async () => { n += 1; if (n === 1) throw new Error('503'); return { messages: [msg(2)], hasMore: false }; },
    onError: (e) => errors.push(e),
  });
  store.addMessages([msg(1), msg(3)]);
  await until('retried', () => seqs(store).length === 3, 5000);
  assert.equal(errors.length, 1);
  assert.equal(n, 2);
});

test('the first message of an unloaded chat starts the run; older pages extend it', () => {
  const { store, calls } = makeStore();
  store.apply('chat.message.new', { chatId: CHAT, message: msg(57) });
  assert.deepEqual(seqs(store), [57]);
  assert.equal(calls.length, 0, 'nothing to fill below the first message seen');
  assert.equal(store.hasMoreBefore(CHAT), true);
  assert.equal(store.firstSequence(CHAT), 57);
  store.addHistory(CHAT, Array.from({ length: 6 }, (_, i) => msg(51 + i)), true, 'before');
  assert.deepEqual(seqs(store), [51, 52, 53, 54, 55, 56, 57]);
  assert.equal(store.hasMoreBefore(CHAT), true);
  store.addHistory(CHAT, Array.from({ length: 50 }, (_, i) => msg(1 + i)), false, 'before');
  assert.equal(seqs(store).length, 57);
  assert.equal(store.hasMoreBefore(CHAT), false);
});

test('optimistic messages come last and are replaced by the saved message (same clientMessageId)', () => {
  const { store } = makeStore();
  store.setChats([chat()]);
  store.addMessages([msg(1)]);
  const pending = { ...msg(0), id: null, sequence: null, senderId: ME, clientMessageId: 'c-1', pending: 'sending', createdAt: 'x', content: 'hi' };
  store.addPending(pending);
  store.addPending(pending);
  assert.deepEqual(store.messages(CHAT).map((m) => m.pending ?? m.sequence), [1, 'sending']);
  store.apply('chat.message.new', { chatId: CHAT, message: msg(2) });
  assert.deepEqual(store.messages(CHAT).map((m) => m.pending ?? m.sequence), [1, 2, 'sending']);
  store.apply('chat.message.saved', { chatId: CHAT, message: msg(3, { senderId: ME, clientMessageId: 'c-1', content: 'hi' }) });
  assert.deepEqual(store.messages(CHAT).map((m) => m.pending ?? m.sequence), [1, 2, 3]);
  assert.equal(store.chat(CHAT).lastMessage.content, 'hi');
  assert.equal(store.chat(CHAT).unreadCount, 2, 'own message not counted');
});

test('a slow history page never undoes a newer edit or delete', () => {
  const { store } = makeStore();
  store.addMessages([msg(1)]);
  store.apply('chat.message.updated', { chatId: CHAT, message: msg(1, { content: 'new', editedAt: '2026-01-02T00:00:00.000Z' }) });
  store.addHistory(CHAT, [msg(1, { content: 'old' })], false, 'latest');
  assert.equal(store.messages(CHAT)[0].content, 'new');
  store.apply('chat.message.deleted', { chatId: CHAT, messageId: msg(1).id, sequence: 1 });
  store.addHistory(CHAT, [msg(1, { content: 'new', editedAt: '2026-01-02T00:00:00.000Z' })], false, 'latest');
  assert.equal(store.messages(CHAT)[0].content, '');
  assert.ok(store.messages(CHAT)[0].deletedAt);
});

test('subscribers hear changes until they unsubscribe', () => {
  const { store } = makeStore();
  const seen = [];
  const off = store.subscribe((c) => seen.push(c.type));
  store.addMessages([msg(1)]);
  off();
  store.addMessages([msg(2)]);
  assert.deepEqual(seen, ['messages']);
});

test('an edit of a message below the loaded run is left out (no hole shown)', () => {
  const { store, calls } = makeStore();
  store.addHistory(CHAT, [msg(50), msg(51)], true, 'latest');
  store.apply('chat.message.updated', { chatId: CHAT, message: msg(10, { content: 'old edit', editedAt: '2026-01-03T00:00:00.000Z' }) });
  assert.deepEqual(seqs(store), [50, 51]);
  assert.equal(store.firstSequence(CHAT), 50);
  store.apply('chat.message.updated', { chatId: CHAT, message: msg(50, { content: 'edit', editedAt: '2026-01-03T00:00:00.000Z' }) });
  assert.equal(store.messages(CHAT)[0].content, 'edit');
  assert.equal(calls.length, 0);
});
