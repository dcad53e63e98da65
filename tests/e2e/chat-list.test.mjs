// The chat list and per-user chat settings with real clients: GET /chats paged through
// 250 chats while new messages arrive (every chat once, in the walk's order), archive /
// unarchive / mute through PUT /chats/:id/settings announced as `chat.settings` on the
// user's other sockets (on both gateways), and a new message un-archiving a chat unless
// it is muted (announced by the worker as `chat.settings` too).

import assert from 'node:assert/strict';

import { assertError } from './contract.mjs';
import { barrier, useDeployment, waitFor } from './harness.mjs';

const d = useDeployment({ mode: 'split', gateways: 2 });

async function listPage(token, query) {
  const res = await d.api('GET', `/chats${query}`, { token });
  assert.equal(res.status, 200, `GET /chats${query}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(Array.isArray(res.body.chats), 'chats');
  assert.ok(res.body.nextCursor === null || typeof res.body.nextCursor === 'string', 'nextCursor');
  for (const c of res.body.chats) {
    assert.ok(Number.isInteger(c.unreadCount), 'unreadCount');
    assert.ok(c.lastMessage === null || typeof c.lastMessage.content === 'string', 'lastMessage');
    assert.deepEqual(Object.keys(c.settings).sort(), ['archived', 'muteMentions', 'mutedUntil']);
  }
  return res.body;
}

const ids = (page) => page.chats.map((c) => c.id);

function putSettings(token, chatId, body) {
  return d.api('PUT', `/chats/${chatId}/settings`, { token, body });
}

/** Waits until `client` got `chat.message.new` for each of `sent` ({chatId, clientMessageId}). */
function delivered(client, sent) {
  return waitFor(() => sent.every((s) => client.count('chat.message.new', s) > 0), 10_000,
    { message: () => `${client.label}: not every new message arrived` });
}

d.test('250 chats paged by 40 while messages arrive: every chat once, in the walk order', { timeout: 180_000 }, async () => {
  const [a, b] = await d.registerAll('lister', 'talker');
  const chats = [];
  for (let i = 0; i < 250; i += 25) {
    const batch = Array.from({ length: Math.min(25, 250 - i) }, (_, j) =>
      d.createGroup(b.accessToken, `g${i + j}`, [a.user.id]));
    chats.push(...(await Promise.all(batch)));
  }
  const socket = await d.connect(0, a.accessToken, { label: 'lister' });
  // Some activity before the walk, so the order is not creation order.
  const before = [];
  for (const c of chats.filter((_, i) => i % 9 === 4)) {
    before.push({ chatId: c.id, ...(await d.send(b.accessToken, c.id, `before ${c.title}`)) });
  }
  await delivered(socket, before);
  const all = await listPage(a.accessToken, '');
  assert.equal(all.nextCursor, null, 'without limit and cursor: every chat, as in v1');
  const order = ids(all);
  assert.equal(order.length, 250);
  assert.deepEqual([...order].sort(), chats.map((c) => c.id).sort());

  // The walk. After each page, messages go into two chats not walked yet and one walked
  // already, and the walk goes on once the lister's socket has them (they are
  // persisted); a sender races along in the background as well, from the first page on.
  const seen = [];
  const touched = new Map();
  let page = await listPage(a.accessToken, '?limit=40');
  // Started after the first page: a message whose persisting began before the walk's
  // snapshot time but committed after the first page read may move its chat (a
  // documented window of milliseconds), and this test must not depend on timing.
  let racing = true;
  const racer = (async () => {
    let n = 0;
    while (racing) {
      const c = chats[(n * 37) % 250];
      await d.send(b.accessToken, c.id, `race ${n++}`);
    }
    return n;
  })();
  try {
    for (;;) {
      assert.ok(page.chats.length <= 40, 'at most limit chats');
      for (const c of page.chats) {
        if (touched.has(c.id)) {
          assert.ok(c.lastSequence >= touched.get(c.id), `chat ${c.id}: lastSequence is current`);
          assert.ok(c.lastMessage, `chat ${c.id}: lastMessage`);
        }
      }
      seen.push(...ids(page));
      if (page.nextCursor === null) break;
      const ahead = order.filter((id) => !seen.includes(id));
      const targets = [ahead[ahead.length - 1], ahead[Math.floor(ahead.length / 2)], seen[0]];
      const sent = [];
      for (const chatId of new Set(targets)) {
        sent.push({ chatId, ...(await d.send(b.accessToken, chatId, `during ${seen.length}`)) });
      }
      await delivered(socket, sent);
      for (const s of sent) {
        const msg = socket.received('chat.message.new', s)[0].message;
        touched.set(s.chatId, msg.sequence);
      }
      page = await listPage(a.accessToken, `?limit=40&cursor=${encodeURIComponent(page.nextCursor)}`);
    }
  } finally {
    racing = false;
  }
  const raced = await racer;
  assert.ok(raced > 0, 'the background sender sent during the walk');
  assert.equal(new Set(seen).size, seen.length, 'no chat twice');
  assert.equal(seen.length, 250, 'every chat');
  assert.deepEqual(seen, order, 'in the order of the walk\'s first page');

  // A new first page sees the chats touched during the walk first.
  const after = ids(await listPage(a.accessToken, '?limit=200'));
  assert.equal(after.length, 200);
  assert.notDeepEqual(after, order.slice(0, 200), 'a new walk has the new order');
  assertError(await d.api('GET', '/chats?limit=201', { token: a.accessToken }), 400, 'validation_failed');
  assertError(await d.api('GET', '/chats?cursor=nope', { token: a.accessToken }), 400, 'validation_failed');
});

d.test('archive, unarchive and mute reach the user\'s other sockets as chat.settings', async () => {
  const [a, b] = await d.registerAll('owner', 'other');
  const chat = await d.createDirect(a.accessToken, b.user.id);
  const [gw1, gw2] = await d.connectSockets(a, [0, 1]);
  const [other] = await d.connectSockets(b, [1]);
  const settingsOf = (client) => client.received('chat.settings', { chatId: chat.id });
  const expectEverywhere = async (n, settings) => {
    for (const c of [gw1, gw2]) {
      await waitFor(() => settingsOf(c).length >= n, 10_000, { message: `${c.label}: chat.settings #${n}` });
      const last = settingsOf(c)[n - 1];
      assert.deepEqual(last.settings, settings, `${c.label}: chat.settings payload`);
      assert.equal(typeof last.offset, 'string', 'chat.settings carries an offset');
    }
  };

  let res = await putSettings(a.accessToken, chat.id, { archived: true });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { mutedUntil: null, archived: true, muteMentions: false });
  await expectEverywhere(1, { mutedUntil: null, archived: true, muteMentions: false });
  assert.ok(!ids(await listPage(a.accessToken, '')).includes(chat.id), 'archived: left out');
  assert.ok(!ids(await listPage(a.accessToken, '?limit=50')).includes(chat.id));
  assert.deepEqual(ids(await listPage(a.accessToken, '?archived=true')), [chat.id]);
  assert.ok(ids(await listPage(b.accessToken, '')).includes(chat.id), 'the other side\'s list is its own');

  const until = '2999-06-01T12:00:00.000Z';
  res = await putSettings(a.accessToken, chat.id, { mutedUntil: until, archived: false });
  assert.deepEqual(res.body, { mutedUntil: until, archived: false, muteMentions: false });
  await expectEverywhere(2, { mutedUntil: until, archived: false, muteMentions: false });
  const entry = (await listPage(a.accessToken, '')).chats.find((c) => c.id === chat.id);
  assert.deepEqual(entry.settings, { mutedUntil: until, archived: false, muteMentions: false });

  res = await putSettings(a.accessToken, chat.id, { mutedUntil: null });
  assert.deepEqual(res.body, { mutedUntil: null, archived: false, muteMentions: false });
  await expectEverywhere(3, { mutedUntil: null, archived: false, muteMentions: false });

  await barrier(d, [other]);
  assert.equal(other.count('chat.settings'), 0, 'the other participant gets no chat.settings');
  const [outsider] = await d.registerAll('outsider');
  assertError(await putSettings(outsider.accessToken, chat.id, { archived: true }), 403, 'forbidden');
  assertError(await putSettings(a.accessToken, chat.id, { archived: 'yes' }), 400, 'validation_failed');
});

d.test('a new message un-archives an archived chat unless it is muted', async () => {
  const [a, b, c] = await d.registerAll('archiver', 'bob', 'carol');
  const plain = await d.createDirect(a.accessToken, b.user.id);
  const muted = await d.createDirect(a.accessToken, c.user.id);
  assert.equal((await putSettings(a.accessToken, plain.id, { archived: true })).status, 200);
  const mute = { archived: true, mutedUntil: '2999-01-01T00:00:00.000Z' };
  assert.equal((await putSettings(a.accessToken, muted.id, mute)).status, 200);
  assert.deepEqual(ids(await listPage(a.accessToken, '')), []);
  const socket = await d.connect(0, a.accessToken, { label: 'archiver' });
  const [other] = await d.connectSockets(a, [1]);
  const sent = [
    { chatId: plain.id, ...(await d.send(b.accessToken, plain.id, 'wake up')) },
    { chatId: muted.id, ...(await d.send(c.accessToken, muted.id, 'shh')) },
  ];
  await delivered(socket, sent);
  // The worker announces the un-archive as the PUT does, to every socket of the user,
  // after the message; the muted chat announces nothing.
  const unarchived = (client) => client.received('chat.settings', { chatId: plain.id })
    .filter((e) => e.settings.archived === false);
  for (const client of [socket, other]) {
    await waitFor(() => unarchived(client).length > 0, 10_000,
      { message: `${client.label}: chat.settings for the un-archived chat` });
    const [event] = unarchived(client);
    assert.deepEqual(event.settings, { mutedUntil: null, archived: false, muteMentions: false });
    assert.equal(typeof event.offset, 'string', 'chat.settings carries an offset');
  }
  const listed = await listPage(a.accessToken, '');
  assert.deepEqual(ids(listed), [plain.id], 'the unmuted chat is back');
  assert.deepEqual(listed.chats[0].settings, { mutedUntil: null, archived: false, muteMentions: false });
  assert.equal(listed.chats[0].lastMessage.content, 'wake up');
  assert.equal(listed.chats[0].unreadCount, 1);
  const archived = await listPage(a.accessToken, '?archived=true');
  assert.deepEqual(ids(archived), [muted.id], 'the muted chat stays archived');
  assert.equal(archived.chats[0].lastMessage.content, 'shh');
  // Last: the barrier's marker is a new chat of the archiver's.
  await barrier(d, [socket, other]);
  for (const client of [socket, other]) {
    assert.equal(unarchived(client).length, 1, `${client.label}: once`);
    assert.equal(client.received('chat.settings', { chatId: muted.id }).length, 0,
      `${client.label}: nothing for the muted chat`);
  }
});
