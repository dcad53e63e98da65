// The demo web app (clients/web, served by api at /app/) in Debian's Chromium, driven by
// playwright-core: alice and bob, each in a browser context of their own, on different
// gateways of one split deployment. Through the UI only: register, start a direct chat by
// username, send (Enter), typing, receipts (ticks up to read), edit, react, pin, reply,
// delete, an attachment, search, a mention in the notifications panel; then kill -9 of
// bob's gateway mid-conversation shows his reconnect banner, and after its restart his list
// holds every message exactly once, in order; then bob goes offline: his sends wait as
// pending and go out once he is online again; a pending send survives a reload (the SDK's
// IndexedDB outbox); history paging of a 60-message chat after a reload; log out and in.
// Access tokens last 75 s, so the app's getToken refreshes them along the way. Screenshots
// of each step go to artifacts/webapp/; a failure keeps both traces there.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PASSWORD, uniqueResourceName, uniqueUsername } from './harness.mjs';
import {
  ARTIFACTS, WebDeployment, WebUser, a11yProblems, ensureAppBuilt, freshArtifacts, launchChromium,
} from './webapp-helpers.mjs';

const S3 = process.env.S3_TEST_ENDPOINT ?? 'http://127.0.0.1:9090';
const BUCKET = uniqueResourceName().replaceAll('_', '-');

ensureAppBuilt();
const d = new WebDeployment({
  mode: 'split',
  gateways: 2,
  // Access tokens of 75 s: auth.expiring comes 60 s before expiry, so the app's getToken
  // refreshes every user's token (CourierClient.refresh) during the test.
  env: { JWT_EXPIRATION_TIME: '75', S3_ENDPOINT: S3, S3_BUCKET: BUCKET, S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'e2e', S3_SECRET_ACCESS_KEY: 'e2e-secret' },
});
let browser;
before(async () => {
  freshArtifacts();
  const made = await fetch(`${S3}/${BUCKET}`, { method: 'PUT' });
  assert.ok(made.ok, `creating bucket ${BUCKET} on ${S3}: ${made.status}`);
  await d.start();
  browser = await launchChromium();
}, { timeout: 120_000 });
after(async () => {
  await browser?.close();
  await d.stop();
  await fetch(`${S3}/${BUCKET}`, { method: 'DELETE' }).catch(() => {});
}, { timeout: 60_000 });

/** The chat's history as the server has it (oldest first), read with `user`'s token. */
async function serverHistory(user, chatId) {
  const { accessToken } = await user.session();
  const res = await fetch(`${d.apiUrl}/chats/${chatId}/messages?limit=100`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(res.status, 200);
  const { messages } = await res.json();
  return messages.sort((a, b) => a.sequence - b.sequence);
}

test('alice and bob chat in the web app in Chromium: live updates, a gateway kill, offline sends', { timeout: 240_000 }, async () => {
  const appUrl = (gateway) => `${d.apiUrl}/app/?gateway=${encodeURIComponent(d.gateway(gateway))}`;
  const alice = await WebUser.open(browser, 'alice', appUrl(0));
  const bob = await WebUser.open(browser, 'bob', appUrl(1));
  let ok = false;
  try {
    // 1. Register through the form (labelled controls, AA contrast); bob starts a chat
    //    with carol (registered over REST).
    assert.deepEqual(await a11yProblems(bob.page), [], 'sign-in form');
    const carol = await d.register('carol');
    const firstRefresh = {};
    await bob.register(uniqueUsername('bob'), 'Bob');
    firstRefresh.bob = (await bob.session()).refreshToken;
    await alice.register(uniqueUsername('alice'), 'Alice');
    firstRefresh.alice = (await alice.session()).refreshToken;
    await bob.page.getByRole('textbox', { name: 'Start a chat with' }).fill(carol.user.username);
    await bob.page.getByRole('button', { name: 'Start', exact: true }).click();
    await bob.page.locator('.chat-item[aria-current="true"]').waitFor();
    await alice.shot('01-registered');

    // 2. Alice starts a direct chat by bob's username and sends with Enter; her echo
    //    becomes the saved message (sequence 1).
    await alice.page.getByRole('textbox', { name: 'Start a chat with' }).fill(bob.username);
    await alice.page.getByRole('button', { name: 'Start', exact: true }).click();
    await alice.page.locator('#conv-title', { hasText: 'Bob' }).waitFor();
    await alice.send('Hello Bob');
    await alice.message('Hello Bob').and(alice.page.locator('[data-seq="1"]')).waitFor();
    await alice.shot('02-alice-sent');

    // 3. Bob's chat list shows the chat on top with its last message and 1 unread, alice
    //    sees bob online; bob moves through his list with the arrow keys and opens alice's
    //    chat with Enter; alice's ticks go to "read".
    const bobItem = bob.page.locator('.chat-item', { hasText: 'Alice' });
    await bobItem.filter({ hasText: 'Hello Bob' }).locator('.unread', { hasText: '1' }).waitFor();
    await alice.page.locator('.chat-item .dot.online').waitFor();
    await bob.shot('03-bob-unread');
    const focused = () => bob.page.evaluate(() => document.activeElement?.querySelector('.chat-title')?.textContent);
    await bob.page.locator('.chat-item').first().focus();
    await bob.page.keyboard.press('End');
    assert.notEqual(await focused(), 'Alice', 'End: the last chat (carol\'s)');
    await bob.page.keyboard.press('ArrowUp');
    assert.equal(await focused(), 'Alice', 'ArrowUp: alice\'s chat, the newest');
    await bob.page.keyboard.press('Enter');
    await bob.message('Hello Bob').waitFor();
    await alice.message('Hello Bob').and(alice.page.locator('[data-status="read"]')).waitFor();
    await alice.shot('03-alice-read');

    // 4. Typing: bob types, alice sees it; Enter sends; alice gets the message.
    const bobInput = bob.page.getByRole('textbox', { name: 'Message', exact: true });
    await bobInput.pressSequentially('Hi Alice', { delay: 20 });
    await alice.page.locator('#typing', { hasText: 'Bob is typing' }).waitFor();
    await alice.shot('04-alice-sees-typing');
    await bobInput.press('Enter');
    await alice.message('Hi Alice').waitFor();
    await alice.page.locator('#typing:empty').waitFor();

    // 5. Edit (Escape cancels an edit first), reaction, pin, reply, delete: each shows on the other side.
    await alice.act('Hello Bob', 'Edit');
    await alice.page.locator('#mode-bar', { hasText: 'Editing' }).waitFor();
    await alice.page.getByRole('textbox', { name: 'Message', exact: true }).press('Escape');
    await alice.page.locator('#mode-bar').waitFor({ state: 'hidden' });
    assert.equal(await alice.page.getByRole('textbox', { name: 'Message', exact: true }).inputValue(), '');
    await alice.act('Hello Bob', 'Edit');
    await alice.page.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello Bob, edited');
    await alice.page.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await bob.message('Hello Bob, edited').locator('.edited').waitFor();

    await bob.act('Hello Bob, edited', 'React with thumbs up');
    await alice.message('Hello Bob, edited').locator('.reaction[data-emoji="👍"][data-count="1"][aria-pressed="false"]').waitFor();
    await alice.act('Hi Alice', 'Pin');
    await bob.message('Hi Alice').locator('.badge.pin').waitFor();
    await alice.act('Hi Alice', 'Reply');
    await alice.send('Replying to you');
    await bob.message('Replying to you').locator('blockquote.reply-to', { hasText: 'Hi Alice' }).waitFor();
    await alice.send('Oops, wrong chat');
    await bob.message('Oops, wrong chat').waitFor();
    await alice.act('Oops, wrong chat', 'Delete');
    await bob.page.locator('#messages > li.msg.deleted p.content', { hasText: 'Message deleted' }).waitFor();
    await bob.shot('05-bob-edits-reactions-pins');
    await alice.shot('05-alice-edits-reactions-pins');

    // 6. An attachment (presigned PUT to S3 through the SDK's upload helper) and a search.
    await alice.page.locator('#composer-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('courier demo notes\n') });
    await alice.page.locator('#uploads li[data-state="ready"]').waitFor();
    await alice.send('the notes');
    await bob.message('the notes').locator('.attachments a', { hasText: 'notes.txt' }).waitFor();
    await bob.page.getByRole('searchbox', { name: 'Search messages' }).fill('notes');
    await bob.page.getByRole('button', { name: 'Search', exact: true }).click();
    await bob.page.locator('#search-results mark', { hasText: 'notes' }).first().waitFor();
    await bob.shot('06-bob-attachment-search');
    for (const user of [alice, bob]) assert.deepEqual(await a11yProblems(user.page), [], `${user.name}'s chat screen`);
    // Keyboard focus is visible: Tab from the message box lands on Send, with a focus ring.
    await bob.page.getByRole('textbox', { name: 'Message', exact: true }).focus();
    await bob.page.keyboard.press('Tab');
    const ring = await bob.page.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return { id: document.activeElement.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    assert.deepEqual(ring, { id: 'composer-send', style: 'solid', width: 3 }, 'focus ring on Send');

    // A mention: bob's notifications count goes to 1; he opens the panel and marks all read.
    await alice.send(`@${bob.username} look at the notes`);
    await bob.page.locator('#notifications-count', { hasText: '(1)' }).waitFor();
    await bob.page.getByRole('button', { name: /^Notifications/ }).click();
    await bob.page.locator('#notifications-panel li.unread', { hasText: 'look at the notes' }).waitFor();
    await bob.shot('06-bob-notifications');
    await bob.page.getByRole('button', { name: 'Mark all read' }).click();
    await bob.page.locator('#notifications-count:empty').waitFor({ state: 'attached' });
    await bob.page.keyboard.press('Escape');
    await bob.page.locator('#notifications-panel').waitFor({ state: 'hidden' });

    // 7. kill -9 of bob's gateway mid-conversation: his banner shows; alice keeps sending;
    //    after the restart bob's list is the server's history, each message once, in order.
    const chatId = await alice.page.locator('.chat-item[aria-current="true"]').getAttribute('data-chat-id');
    await alice.send('before the kill');
    await d.process('gateway-2').kill('SIGKILL');
    await bob.page.locator('#banner:not([hidden])').waitFor();
    await bob.shot('07-bob-banner');
    for (let i = 1; i <= 5; i += 1) await alice.send(`while bob is away ${i}`);
    await alice.message('while bob is away 5').and(alice.page.locator('[data-seq]')).waitFor();
    await d.restart('gateway-2');
    await bob.page.locator('#banner').waitFor({ state: 'hidden', timeout: 60_000 });
    let history = await serverHistory(alice, chatId);
    const contents = (messages) => messages.map((m) => (m.deletedAt ? 'Message deleted' : m.content));
    await bob.waitListed(contents(history));
    assert.deepEqual((await bob.listed()).map((m) => m.seq), history.map((m) => m.sequence), 'bob: every sequence once, in order');
    await bob.shot('07-bob-recovered');

    // 8. Bob goes offline: his sends stay pending (optimistic, "sending"); online again,
    //    they go out in order and reach alice.
    await bob.context.setOffline(true);
    await bob.page.locator('#banner:not([hidden])').waitFor();
    await bob.send('sent offline 1');
    await bob.send('sent offline 2');
    await bob.page.locator('#messages > li.msg.pending[data-status="sending"]').nth(1).waitFor();
    await bob.shot('08-bob-offline-pending');
    await bob.context.setOffline(false);
    await alice.message('sent offline 2').waitFor({ timeout: 60_000 });
    history = await serverHistory(alice, chatId);
    assert.deepEqual(contents(history).slice(-2), ['sent offline 1', 'sent offline 2']);
    for (const user of [alice, bob]) {
      await user.waitListed(contents(history));
      assert.deepEqual((await user.listed()).map((m) => m.seq), history.map((m) => m.sequence), `${user.name}: every sequence once, in order`);
    }
    await bob.page.locator('#banner').waitFor({ state: 'hidden' });
    await alice.shot('08-alice-final');
    await bob.shot('08-bob-final');

    // 9. The outbox survives a reload (IndexedDB): with bob's sends failing at the network,
    //    a message stays pending through a reload and goes out once sends pass again.
    const sends = '**/chats/*/messages';
    await bob.page.route(sends, (route) => (route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.continue()));
    await bob.send('kept across a reload');
    await bob.page.locator('#messages > li.msg.pending', { hasText: 'kept across a reload' }).waitFor();
    await bob.page.reload();
    await bob.page.locator('#root[data-ready="true"]').waitFor();
    await bob.page.locator('.chat-item', { hasText: 'Alice' }).click();
    await bob.page.locator('#messages > li.msg.pending', { hasText: 'kept across a reload' }).waitFor();
    await bob.shot('09-bob-pending-after-reload');
    await bob.page.unroute(sends);
    await alice.message('kept across a reload').waitFor({ timeout: 60_000 });
    await bob.message('kept across a reload').and(bob.page.locator('[data-seq]')).waitFor();

    // 10. History paging: carol sends 60 messages (REST); bob reloads the page (still
    //    signed in: the session is in sessionStorage; the SDK's store starts empty), opens
    //    her chat, sees the latest page, and "Load older messages" brings the rest, in
    //    order, each once.
    const carolChat = await bob.page.locator('.chat-item', { hasText: 'carol' }).getAttribute('data-chat-id');
    const paged = Array.from({ length: 60 }, (_, i) => `page message ${i + 1}`);
    const carolLogin = await d.api('POST', '/auth/login', { body: { username: carol.username, password: carol.password } });
    for (const text of paged) await d.send(carolLogin.body.accessToken, carolChat, text);
    await bob.page.locator('.chat-item', { hasText: 'page message 60' }).waitFor();
    await bob.page.reload();
    await bob.page.locator('#root[data-ready="true"]').waitFor();
    await bob.page.locator('.chat-item', { hasText: 'page message 60' }).click();
    await bob.message('page message 60').waitFor();
    assert.ok((await bob.listed()).length < paged.length, 'the first page is not the whole history');
    await bob.page.getByRole('button', { name: 'Load older messages' }).click();
    await bob.waitListed(paged);
    await bob.page.getByRole('button', { name: 'Load older messages' }).waitFor({ state: 'hidden' });
    await bob.shot('09-bob-paged');

    // 11. Log out and back in: the form, then the same chats.
    await bob.page.getByRole('button', { name: 'Log out' }).click();
    await bob.page.getByRole('textbox', { name: 'Username' }).fill(bob.username);
    await bob.page.getByLabel('Password (at least 8 characters)').fill(PASSWORD);
    await bob.page.getByRole('button', { name: 'Log in' }).click();
    await bob.page.locator('#root[data-ready="true"] .chat-item', { hasText: 'kept across a reload' }).waitFor();

    // The tokens were refreshed along the way (auth.expiring → getToken → POST /auth/refresh).
    for (const user of [alice, bob]) {
      await user.page.waitForFunction((first) => JSON.parse(sessionStorage.getItem('courier.session')).refreshToken !== first,
        firstRefresh[user.name], { timeout: 60_000 });
    }
    assert.deepEqual([...alice.consoleErrors, ...bob.consoleErrors], [], 'no uncaught page errors');
    ok = true;
  } finally {
    if (!ok) process.stderr.write(`[webapp] failed: screenshots and traces in ${ARTIFACTS}\n`);
    await alice.close(!ok);
    await bob.close(!ok);
    if (!ok) d.dumpLogs('after the web app test failed');
  }
});
