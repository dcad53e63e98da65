// Mentions and incoming webhooks end to end (contract "Mentions and notifications",
// "Webhooks and integration events"), on the split deployment with real
// socket.io-clients over WebSocket and long-polling: a mention reaches the mentioned
// sockets live as `notification.new` equal to the stored notification; a webhook's post
// reaches every participant as `chat.message.new` from the bot.

import assert from 'node:assert/strict';

import { assertMessageEvent, assertTimestamp, assertUuid } from './contract.mjs';
import { barrier, useDeployment, waitFor } from './harness.mjs';

const d = useDeployment({ mode: 'split' });

function assertNotification(n, expected) {
  for (const f of ['id', 'chatId', 'messageId', 'senderId']) assertUuid(n[f], `Notification.${f}`);
  assert.equal(n.type, 'mention');
  assertTimestamp(n.createdAt, 'Notification.createdAt', { millis: true });
  assert.equal(n.readAt, null);
  for (const [k, v] of Object.entries(expected)) assert.equal(n[k], v, `Notification.${k}`);
}

d.test('a mention reaches the mentioned sockets live and is stored', { timeout: 60_000 }, async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(alice.accessToken, 'mentions', [bob.user.id, carol.user.id]);
  const bobWs = await d.connect(0, bob.accessToken, { label: 'bob/ws' });
  const carolPoll = await d.connect(0, carol.accessToken, { transports: ['polling'], label: 'carol/polling' });
  const aliceWs = await d.connect(0, alice.accessToken, { label: 'alice/ws' });
  const text = `@${bob.user.username} and @${carol.user.username}: review please`;
  await d.send(alice.accessToken, group.id, text);

  for (const [client, account] of [[bobWs, bob], [carolPoll, carol]]) {
    await waitFor(() => client.count('notification.new') === 1, 10_000,
      { message: () => `${client.label} got no notification.new` });
    const live = client.received('notification.new')[0];
    assert.match(live.offset, /^\d+-\d+$/, 'recoverable: it carries its offset');
    assertNotification(live.notification, { chatId: group.id, senderId: alice.user.id, excerpt: text });
    const list = await d.api('GET', '/notifications?unread=true', { token: account.accessToken });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.notifications, [live.notification], 'stored as announced');
    const [message] = client.messages('chat.message.new', { chatId: group.id });
    assert.equal(message.id, live.notification.messageId);
    assert.deepEqual([...message.mentions].sort(), [bob.user.id, carol.user.id].sort());
  }
  await barrier(d, [aliceWs]); // hers would have been published with theirs
  assert.equal(aliceWs.count('notification.new'), 0, 'the sender is not notified');
  const read = await d.api('POST', '/notifications/read', { token: bob.accessToken, body: { all: true } });
  assert.equal(read.status, 204);
  const after = await d.api('GET', '/notifications?unread=true', { token: bob.accessToken });
  assert.deepEqual(after.body.notifications, []);
});

d.test('a webhook posts into the chat as its bot, delivered to every participant', { timeout: 60_000 }, async () => {
  const [alice, bob] = await d.registerAll('alice', 'bob');
  const group = await d.createGroup(alice.accessToken, 'alerts', [bob.user.id]);
  const created = await d.api('POST', `/chats/${group.id}/hooks`, { token: alice.accessToken, body: { name: 'CI' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { id: hookId, url } = created.body;
  const bobPoll = await d.connect(0, bob.accessToken, { transports: ['polling', 'websocket'], label: 'bob' });
  const aliceWs = await d.connect(0, alice.accessToken, { label: 'alice' });

  const posted = await d.api('POST', url, { body: { content: 'deploy finished' } });
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  for (const client of [bobPoll, aliceWs]) {
    await waitFor(() => client.count('chat.message.new', { chatId: group.id }) === 1, 10_000,
      { message: () => `${client.label} got no chat.message.new from the hook` });
    const [payload] = client.received('chat.message.new', { chatId: group.id });
    assertMessageEvent(payload, { chatId: group.id, senderId: hookId, content: 'deploy finished' });
    assert.deepEqual(payload.message.bot, { hookId, name: 'CI' });
  }
  await barrier(d, [aliceWs]); // a saved would have been published with the new
  assert.equal(aliceWs.count('chat.message.saved'), 0, 'nobody but the hook sent it');

  const wrong = await d.api('POST', `/hooks/${hookId}/not-the-token`, { body: { content: 'x' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.code, 'unauthorized');
  const gone = await d.api('DELETE', `/chats/${group.id}/hooks/${hookId}`, { token: alice.accessToken });
  assert.equal(gone.status, 204);
  const dead = await d.api('POST', url, { body: { content: 'after delete' } });
  assert.equal(dead.status, 401);
});
