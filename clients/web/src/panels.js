// The side tools: starting a direct chat by username (GET /users/search), message search
// (GET /search/messages, snippets with <mark> rebuilt as elements, never parsed as HTML),
// and the notifications list (mentions) with "mark all read" (focus moves into the panel
// when it opens; Escape closes it and returns focus to its button).

import { announce, clear, h } from './dom.js';

/**
 * The "start a chat" form: finds the user by exact username and opens (or creates) the
 * direct chat with them.
 * @param {import('@courier-chat/client').CourierClient} client
 * @param {(chatId: string) => void} onOpen
 */
export function newChatForm(client, onOpen) {
  const input = h('input', { id: 'new-chat-username', name: 'username', autocomplete: 'off', required: true, placeholder: 'username' });
  const status = h('p.form-error', { id: 'new-chat-error', role: 'alert' });
  return h('form.tool', {
    'aria-labelledby': 'new-chat-label',
    onsubmit: async (event) => {
      event.preventDefault();
      status.textContent = '';
      const username = input.value.trim().toLowerCase();
      if (!username) return;
      try {
        const page = await client.searchUsers(username);
        const user = (page.users ?? page).find((u) => u.username === username);
        if (!user) { status.textContent = `No user called “${username}”.`; return; }
        if (user.id === client.userId) { status.textContent = 'That is you.'; return; }
        const chat = await client.createDirectChat(user.id);
        await client.loadChats();
        input.value = '';
        onOpen(chat.id);
      } catch (err) {
        status.textContent = `Could not start the chat: ${err.message}`;
      }
    },
  },
  h('label', { for: 'new-chat-username', id: 'new-chat-label' }, 'Start a chat with'),
  h('div.row', {}, input, h('button', { type: 'submit', id: 'new-chat-start' }, 'Start')),
  status);
}

/** Rebuilds a search snippet (HTML-safe text with <mark>…</mark>) as nodes. */
export function snippetNodes(snippet) {
  const unescape = (s) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);
  return snippet.split(/(<mark>.*?<\/mark>)/s).filter(Boolean).map((part) => (part.startsWith('<mark>')
    ? h('mark', {}, unescape(part.slice(6, -7)))
    : document.createTextNode(unescape(part))));
}

/**
 * The message search form and its results.
 * @param {import('@courier-chat/client').CourierClient} client
 * @param {(chatId: string, messageId: string) => void} onOpen
 */
export function searchForm(client, onOpen) {
  const input = h('input', { id: 'search-input', type: 'search', name: 'q', maxlength: 200, placeholder: 'words, "a phrase"' });
  const results = h('ul.results', { id: 'search-results', 'aria-label': 'Search results', hidden: true });
  const form = h('form.tool', {
    role: 'search',
    onsubmit: async (event) => {
      event.preventDefault();
      const q = input.value.trim();
      clear(results);
      results.hidden = !q;
      if (!q) return;
      try {
        const page = await client.searchMessages(q);
        const found = page.results ?? [];
        if (!found.length) results.append(h('li.muted', {}, 'Nothing found.'));
        for (const { message, snippet } of found) {
          results.append(h('li', {}, h('button.result', {
            type: 'button',
            onclick: () => onOpen(message.chatId, message.id),
          }, snippetNodes(snippet))));
        }
        announce(`${found.length} result${found.length === 1 ? '' : 's'}`);
      } catch (err) {
        results.append(h('li.form-error', { role: 'alert' }, `Search failed: ${err.message}`));
      }
    },
  },
  h('label', { for: 'search-input' }, 'Search messages'),
  h('div.row', {}, input, h('button', { type: 'submit', id: 'search-submit' }, 'Search')));
  return h('div', {}, form, results);
}

/**
 * The notifications button (with the unread count) and its panel.
 * @param {import('@courier-chat/client').CourierClient} client
 * @param {(chatId: string, messageId: string) => void} onOpen
 */
export function notifications(client, onOpen) {
  const count = h('span.count', { id: 'notifications-count' });
  const panel = h('section.panel', { id: 'notifications-panel', 'aria-labelledby': 'notifications-title', tabindex: '-1', hidden: true });
  const button = h('button.secondary', { type: 'button', id: 'notifications-toggle', 'aria-expanded': 'false', 'aria-controls': 'notifications-panel' }, 'Notifications ', count);
  let items = [];

  const refresh = async () => {
    try {
      const page = await client.notifications({});
      items = page.notifications ?? [];
    } catch (err) {
      announce(`Could not load notifications: ${err.message}`);
    }
    render();
  };
  const render = () => {
    const unread = items.filter((n) => !n.readAt).length;
    count.textContent = unread ? `(${unread})` : '';
    clear(panel).append(h('h2', { id: 'notifications-title' }, 'Notifications'));
    if (!items.length) panel.append(h('p.muted', {}, 'No mentions yet.'));
    panel.append(h('ul.results', {}, items.map((n) => h('li', { class: n.readAt ? 'read' : 'unread' },
      h('button.result', { type: 'button', onclick: () => onOpen(n.chatId, n.messageId) },
        `${client.store.user(n.senderId)?.displayName ?? 'Someone'} mentioned you: ${n.excerpt}`)))));
    if (unread) {
      panel.append(h('button.secondary', {
        type: 'button',
        id: 'notifications-read-all',
        onclick: async () => {
          try {
            await client.markNotificationsRead('all');
            await refresh();
            panel.focus(); // the button is gone: keep focus in the panel
          } catch (err) {
            announce(`Could not mark read: ${err.message}`);
          }
        },
      }, 'Mark all read'));
    }
  };
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) {
      panel.focus();
      refresh();
    }
  });
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { panel.hidden = true; button.setAttribute('aria-expanded', 'false'); button.focus(); }
  });
  return { button, panel, refresh };
}
