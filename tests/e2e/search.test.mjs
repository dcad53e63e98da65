// Search end to end (contract "Search"): messages sent through the split deployment (api,
// worker, gateway as separate processes) are found by GET /search/messages of the chats'
// participants only, with the match marked in an HTML-safe snippet; an edit is found as
// edited, a delete no longer; a removed member finds nothing more of the chat.

import assert from 'node:assert/strict';

import { useDeployment, waitFor } from './harness.mjs';
import { edit, remove, stored } from './lifecycle-helpers.mjs';

const d = useDeployment({ mode: 'split' });

async function search(token, q, extra = '') {
  const res = await d.api('GET', `/search/messages?q=${encodeURIComponent(q)}${extra}`, { token });
  assert.equal(res.status, 200, `search ${q}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const contents = async (token, q) => (await search(token, q)).results.map((r) => r.message.content);

d.test('participants find messages as sent, edited and deleted; nobody else does', { timeout: 60_000 }, async () => {
  const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
  const group = await d.createGroup(alice.accessToken, 'search', [bob.user.id, carol.user.id]);
  const sent = await d.send(alice.accessToken, group.id, 'the <quarterly> deploy plan & budget');
  const m = await stored(d, alice.accessToken, group.id, sent.clientMessageId);

  const page = await search(bob.accessToken, 'quarterly deploy');
  assert.equal(page.results.length, 1);
  assert.equal(page.nextCursor, null);
  assert.equal(page.results[0].message.id, m.id);
  assert.deepEqual(page.results[0].message, m, 'the message as history shows it');
  assert.equal(page.results[0].snippet,
    'the &lt;<mark>quarterly</mark>&gt; <mark>deploy</mark> plan &amp; budget');
  const [dave] = await d.registerAll('dave');
  assert.deepEqual(await contents(dave.accessToken, 'quarterly'), [], 'not a participant');

  await edit(d, alice.accessToken, group.id, m.id, 'the yearly deploy plan');
  await waitFor(async () => (await contents(bob.accessToken, 'yearly')).length === 1, 10_000,
    { message: () => 'the edit never became searchable' });
  assert.deepEqual(await contents(bob.accessToken, 'quarterly'), []);

  const res = await d.api('DELETE', `/chats/${group.id}/participants/${carol.user.id}`, { token: alice.accessToken });
  assert.equal(res.status, 204);
  assert.deepEqual(await contents(carol.accessToken, 'deploy'), [], 'removed: nothing more of the chat');
  const denied = await d.api('GET', `/search/messages?q=deploy&chatId=${group.id}`, { token: carol.accessToken });
  assert.equal(denied.status, 403);

  await remove(d, alice.accessToken, group.id, m.id);
  await waitFor(async () => (await contents(bob.accessToken, 'deploy')).length === 0, 10_000,
    { message: () => 'the deleted message is still found' });
});
