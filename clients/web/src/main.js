// Entry point of the demo web app. Signed out: the sign-in form. Signed in: a CourierClient
// (REST on this page's origin, Socket.IO on `?gateway=` or the same origin, the outbox in
// IndexedDB), the chat list, the open conversation, the tools (new chat, search,
// notifications) and the connection banner, all re-rendered from the SDK's store.

import { CourierClient, IndexedDbStorage } from '@courier-chat/client';

import { renderAuth } from './auth-view.js';
import { connectBanner } from './banner.js';
import { ChatList, chatTitle, peerOf } from './chat-list.js';
import { Conversation } from './conversation.js';
import { announce, clear, h } from './dom.js';
import { newChatForm, notifications, searchForm } from './panels.js';
import { clearSession, loadSession, saveAuth, tokenSource } from './session.js';

const root = document.getElementById('root');
const bannerEl = document.getElementById('banner');
const baseUrl = window.location.origin;
const gatewayUrl = new URLSearchParams(window.location.search).get('gateway') || baseUrl;

/** The running app (client and views), so signing out can take it down. */
let app = null;

function start() {
  const session = loadSession();
  if (session) signedIn(session);
  else renderAuth(root, baseUrl, (auth) => signedIn(saveAuth(auth)));
}

function signOut() {
  if (!app) return;
  const { client, stop } = app;
  app = null;
  stop();
  client.request('POST', '/auth/logout').catch(() => { /* the session may be gone already */ });
  client.disconnect();
  clearSession();
  bannerEl.hidden = true;
  start();
}

async function signedIn(session) {
  const client = new CourierClient({
    baseUrl,
    gatewayUrl,
    getToken: tokenSource(baseUrl, () => setTimeout(signOut, 0)),
    storage: new IndexedDbStorage(`courier-outbox-${session.user.id}`),
  });
  clear(root);
  root.setAttribute('aria-busy', 'true');

  const convSection = h('section.conversation', { 'aria-labelledby': 'conv-title' });
  const conversation = new Conversation(client, convSection);
  const chatListEl = h('ul.chat-list', { id: 'chat-list', 'aria-labelledby': 'chats-heading' });
  const open = async (chatId, messageId) => {
    chatList.select(chatId);
    await conversation.open(chatId);
    if (messageId) {
      const el = conversation.list.querySelector(`[data-id="${CSS.escape(messageId)}"]`);
      el?.scrollIntoView({ block: 'center' });
      el?.classList.add('highlight');
    }
  };
  const chatList = new ChatList(client, chatListEl, open);
  const notes = notifications(client, open);

  root.append(
    h('header.topbar', {},
      h('h1', {}, 'Courier'),
      h('span.me', { id: 'me' }, `Signed in as ${session.user.displayName || session.user.username} (@${session.user.username})`),
      notes.button,
      h('button.secondary', { type: 'button', id: 'sign-out', onclick: signOut }, 'Log out')),
    h('div.layout', {},
      h('aside.sidebar', { 'aria-label': 'Chats and tools' },
        newChatForm(client, open),
        searchForm(client, open),
        h('h2', { id: 'chats-heading' }, 'Chats'),
        chatListEl),
      convSection,
      notes.panel));

  // Presence of the peers of direct chats, asked once per peer (then kept by presence.update).
  const asked = new Set();
  const askPresence = () => {
    const peers = [...new Set(client.store.chats().map((c) => peerOf(client, c)))].filter((p) => p && !asked.has(p));
    if (!peers.length || client.state !== 'connected') return;
    for (const p of peers) asked.add(p);
    client.presence(peers).catch((err) => {
      for (const p of peers) asked.delete(p);
      console.warn('[courier] presence', err);
    });
  };
  // Store changes arrive in bursts (a replay after a reconnect): render once per task.
  let scheduled = false;
  const render = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      if (app?.client !== client) return;
      chatList.render();
      conversation.render();
      askPresence();
    }, 0);
  };
  const offStore = client.store.subscribe(render);
  const offEvent = client.on('event', (name, payload) => {
    if (name === 'notification.new') {
      notes.refresh();
      announce('You were mentioned');
    } else if (name === 'chat.message.new' && payload?.message?.senderId !== client.userId) {
      announce(`New message in ${chatTitle(client, client.store.chat(payload.chatId))}`);
    }
  });
  const offError = client.on('error', (err) => console.warn('[courier]', err));
  const offBanner = connectBanner(client, bannerEl);
  const onVisible = () => { if (document.visibilityState === 'visible') render(); };
  document.addEventListener('visibilitychange', onVisible);
  app = {
    client,
    stop: () => { offStore(); offEvent(); offError(); offBanner(); document.removeEventListener('visibilitychange', onVisible); },
  };

  try {
    await client.connect();
    await client.loadChats();
    await notes.refresh();
  } catch (err) {
    announce(`Could not load your chats: ${err.message}`);
    console.warn('[courier] start-up', err);
  }
  root.removeAttribute('aria-busy');
  root.dataset.ready = 'true';
  render();
}

start();
