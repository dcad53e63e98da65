// The chat list: every chat of the store (newest activity first) as a button with its
// title, presence dot (direct chats), last message and unread count. Arrow keys, Home and
// End move between chats (one tab stop for the list); Enter or a click opens one.

import { clear, h } from './dom.js';

/** The other participant of a direct chat (undefined for groups). */
export function peerOf(client, chat) {
  if (chat?.type !== 'direct') return undefined;
  return chat.participants?.find((p) => p.userId !== client.userId)?.userId;
}

/** A chat's display title: a group's title, or the other participant's name. */
export function chatTitle(client, chat) {
  if (!chat) return '';
  if (chat.type !== 'direct') return chat.title || 'Group';
  const peer = peerOf(client, chat);
  const user = peer ? client.store.user(peer) : undefined;
  return user?.displayName || user?.username || 'Direct chat';
}

/** One line about a message for the list. */
export function preview(message) {
  if (!message) return 'No messages yet';
  if (message.deletedAt) return 'Message deleted';
  if (!message.content && message.attachments?.length) return `📎 ${message.attachments[0].fileName}`;
  return message.content;
}

export class ChatList {
  /**
   * @param {import('@courier-chat/client').CourierClient} client
   * @param {HTMLUListElement} list
   * @param {(chatId: string) => void} onOpen
   */
  constructor(client, list, onOpen) {
    this.client = client;
    this.list = list;
    this.onOpen = onOpen;
    this.selected = null;
    list.addEventListener('keydown', (e) => this.#keydown(e));
  }

  select(chatId) {
    this.selected = chatId;
    this.render();
  }

  render() {
    const { client, list } = this;
    const focusedId = document.activeElement?.closest?.('.chat-item')?.dataset.chatId;
    const chats = client.store.chats().filter((c) => !c.settings?.archived);
    clear(list);
    if (!chats.length) {
      list.append(h('li.muted', {}, 'No chats yet: start one with a username above.'));
      return;
    }
    const tabStop = chats.some((c) => c.id === this.selected) ? this.selected : chats[0].id;
    for (const chat of chats) {
      const peer = peerOf(client, chat);
      const online = peer ? client.store.presence(peer)?.status === 'online' : null;
      const unread = chat.id === this.selected ? 0 : (chat.unreadCount ?? 0);
      const button = h('button.chat-item', {
        type: 'button',
        dataset: { chatId: chat.id },
        tabindex: chat.id === tabStop ? '0' : '-1',
        'aria-current': chat.id === this.selected ? 'true' : null,
        onclick: () => this.onOpen(chat.id),
      },
      online === null ? h('span.dot.group', { 'aria-hidden': 'true' }, '#')
        : h('span', { class: `dot ${online ? 'online' : 'offline'}`, title: online ? 'online' : 'offline' }),
      online === null ? null : h('span.visually-hidden', {}, online ? 'online, ' : 'offline, '),
      h('span.chat-main', {},
        h('span.chat-title', {}, chatTitle(client, chat)),
        h('span.chat-last', {}, preview(chat.lastMessage))),
      unread > 0 ? h('span.unread', { 'aria-label': `${unread} unread` }, String(unread)) : null);
      list.append(h('li', {}, button));
    }
    if (focusedId) list.querySelector(`[data-chat-id="${CSS.escape(focusedId)}"]`)?.focus();
  }

  #keydown(event) {
    const buttons = [...this.list.querySelectorAll('.chat-item')];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const next = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const target = buttons[Math.max(0, Math.min(buttons.length - 1, next))];
    for (const b of buttons) b.tabIndex = b === target ? 0 : -1;
    target.focus();
  }
}
