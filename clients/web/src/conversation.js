// The open chat: header (title, presence, pins), history paging (a button and scrolling to
// the top), the message list (kept in place by key, see messages.js), the typing line, and
// the composer: Enter sends (optimistic echo through the SDK's outbox), Shift+Enter breaks
// the line, Escape cancels an edit or a reply; attachments upload through the SDK first.

import { chatTitle, peerOf } from './chat-list.js';
import { announce, clear, h } from './dom.js';
import { messageKey, renderMessage, signature } from './messages.js';

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

export class Conversation {
  /**
   * @param {import('@courier-chat/client').CourierClient} client
   * @param {HTMLElement} root the <section> to fill
   */
  constructor(client, root) {
    this.client = client;
    this.root = root;
    this.chatId = null;
    this.items = new Map(); // key -> {el, sig}
    this.mode = null; // {kind: 'edit'|'reply', message}
    this.uploads = []; // {id?, name, state}
    this.loadingOlder = false;
    this.typingSentAt = 0;
    this.typingTimer = null;
    this.marked = new Map(); // chatId -> sequence marked read
    this.#build();
  }

  #build() {
    this.title = h('h2', { id: 'conv-title' }, 'No chat open');
    this.subtitle = h('p.subtitle', { id: 'conv-subtitle' });
    this.older = h('button.secondary', { type: 'button', id: 'load-older', hidden: true, onclick: () => this.loadOlder() }, 'Load older messages');
    // New messages are announced through the page's live region (main.js), not by making
    // the list live: edits and ticks re-render items and would be read out again.
    this.list = h('ol.messages', { id: 'messages', 'aria-labelledby': 'conv-title' });
    this.scroller = h('div.scroller', {}, this.older, this.list);
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < 40) this.loadOlder();
    });
    this.typing = h('p.typing', { id: 'typing', 'aria-live': 'polite' });
    this.modeBar = h('div.mode-bar', { id: 'mode-bar', hidden: true });
    this.uploadList = h('ul.uploads', { id: 'uploads', 'aria-label': 'Files to send' });
    this.fileInput = h('input.visually-hidden', { type: 'file', id: 'composer-file', multiple: true, onchange: () => this.#pickFiles() });
    this.input = h('textarea', { id: 'composer-input', rows: 2, maxlength: 4000, placeholder: 'Write a message', disabled: true });
    this.sendButton = h('button', { type: 'submit', id: 'composer-send', disabled: true }, 'Send');
    this.input.addEventListener('keydown', (e) => this.#keydown(e));
    this.input.addEventListener('input', () => this.#typed());
    this.input.addEventListener('blur', () => this.#stopTyping());
    this.form = h('form.composer', { 'aria-label': 'Send a message', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.modeBar,
      this.uploadList,
      h('div.composer-row', {},
        h('label.file-label', { for: 'composer-file', title: 'Attach files' }, h('span', { 'aria-hidden': 'true' }, '📎'), h('span.visually-hidden', {}, 'Attach files')),
        this.fileInput,
        h('label.visually-hidden', { for: 'composer-input' }, 'Message'),
        this.input,
        this.sendButton));
    clear(this.root).append(
      h('header.conv-head', {}, this.title, this.subtitle),
      this.scroller, this.typing, this.form);
  }

  /** Opens `chatId`: loads its latest page if the store has none and its pins, then renders. */
  async open(chatId) {
    if (this.chatId === chatId) return;
    this.#stopTyping();
    this.chatId = chatId;
    this.items.clear();
    clear(this.list);
    this.#setMode(null);
    this.uploads = [];
    this.input.disabled = false;
    this.sendButton.disabled = false;
    this.render();
    this.input.focus();
    try {
      await Promise.all([
        this.client.store.messages(chatId).some((m) => m.sequence) ? null : this.client.loadHistory(chatId),
        this.client.loadPins(chatId),
      ]);
    } catch (err) {
      announce(`Could not load the chat: ${err.message}`);
    }
    if (this.chatId === chatId) this.render(true);
  }

  /** Loads the page before the oldest message shown (history paging). */
  async loadOlder() {
    const { client, chatId } = this;
    if (!chatId || this.loadingOlder || !client.store.hasMoreBefore(chatId)) return;
    const oldest = client.store.messages(chatId).find((m) => m.sequence)?.sequence;
    if (!oldest) return;
    this.loadingOlder = true;
    this.older.setAttribute('aria-busy', 'true');
    const before = this.scroller.scrollHeight - this.scroller.scrollTop;
    try {
      await client.loadHistory(chatId, { before: oldest });
      this.render();
      this.scroller.scrollTop = this.scroller.scrollHeight - before; // keep the view still
    } catch (err) {
      announce(`Could not load older messages: ${err.message}`);
    } finally {
      this.loadingOlder = false;
      this.older.removeAttribute('aria-busy');
    }
  }

  /** Re-renders what changed; `toBottom` scrolls to the newest message. */
  render(toBottom = false) {
    const { client, chatId } = this;
    if (!chatId) return;
    const chat = client.store.chat(chatId);
    const atBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 60;
    this.title.textContent = chatTitle(client, chat);
    const peer = peerOf(client, chat);
    const presence = peer ? client.store.presence(peer) : undefined;
    const pins = client.store.pins(chatId);
    this.subtitle.textContent = [
      peer ? (presence?.status === 'online' ? 'online' : 'offline') : `${chat?.participants?.length ?? 0} members`,
      pins?.size ? `${pins.size} pinned` : null,
    ].filter(Boolean).join(' · ');
    this.older.hidden = !client.store.hasMoreBefore(chatId);

    const messages = client.store.messages(chatId);
    const seen = new Set();
    let previous = null;
    for (const m of messages) {
      const key = messageKey(m);
      if (seen.has(key)) continue; // never show one message twice
      seen.add(key);
      const ctx = this.#context(m, pins);
      const sig = signature(m, ctx);
      let item = this.items.get(key);
      if (!item || item.sig !== sig) {
        const el = renderMessage(m, ctx, this.#actions());
        const hadFocus = item?.el.contains(document.activeElement);
        if (item) item.el.replaceWith(el);
        item = { el, sig };
        this.items.set(key, item);
        if (hadFocus) el.querySelector('button')?.focus();
      }
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== item.el) this.list.insertBefore(item.el, expected);
      previous = item.el;
    }
    for (const [key, item] of this.items) {
      if (!seen.has(key)) { item.el.remove(); this.items.delete(key); }
    }
    this.#renderTyping();
    if (toBottom || atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    this.#markRead(messages);
  }

  #context(m, pins) {
    const { client } = this;
    const mine = m.senderId === client.userId;
    const name = (id) => (id === client.userId ? 'You' : (client.store.user(id)?.displayName ?? client.store.user(id)?.username ?? '…'));
    return { mine, pinned: Boolean(m.id && pins?.has(m.id)), senderName: name(m.senderId), replyName: m.replyTo ? name(m.replyTo.senderId) : '' };
  }

  #actions() {
    const { client } = this;
    const failed = (what) => (err) => announce(`Could not ${what}: ${err?.message ?? err}`);
    return {
      reply: (m) => this.#setMode({ kind: 'reply', message: m }),
      edit: (m) => this.#setMode({ kind: 'edit', message: m }),
      remove: (m) => client.deleteMessage(m.chatId, m.id).catch(failed('delete')),
      react: (m, emoji, on) => client.react(m.chatId, m.id, emoji, on).catch(failed('react')),
      pin: (m, on) => client.pin(m.chatId, m.id, on).catch(failed(on ? 'pin' : 'unpin')),
      retry: (m) => client.outbox().find((e) => e.clientMessageId === m.clientMessageId)?.retry(),
    };
  }

  /** Marks the newest message read while the page is visible. */
  #markRead(messages) {
    const last = [...messages].reverse().find((m) => m.sequence)?.sequence;
    if (!last || document.visibilityState !== 'visible') return;
    if ((this.marked.get(this.chatId) ?? 0) >= last) return;
    this.marked.set(this.chatId, last);
    this.client.markRead(this.chatId, last).catch((err) => {
      this.marked.delete(this.chatId);
      announce(`Could not mark as read: ${err.message}`);
    });
  }

  #renderTyping() {
    const ids = this.client.store.typing(this.chatId).filter((id) => id !== this.client.userId);
    const names = ids.map((id) => this.client.store.user(id)?.displayName ?? 'Someone');
    this.typing.textContent = names.length === 0 ? ''
      : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  /** Sends (or saves an edit of) the composer's text with the chosen attachments. */
  submit() {
    const { client, chatId } = this;
    if (!chatId) return;
    const content = this.input.value.trim();
    if (this.mode?.kind === 'edit') {
      if (!content) return;
      const m = this.mode.message;
      client.edit(m.chatId, m.id, content).catch((err) => announce(`Could not edit: ${err.message}`));
      this.#setMode(null);
      this.input.value = '';
      return;
    }
    if (this.uploads.some((u) => u.state === 'uploading')) {
      announce('Wait for the files to finish uploading.');
      return;
    }
    const attachments = this.uploads.filter((u) => u.id).map((u) => u.id);
    if (!content && !attachments.length) return;
    client.send(chatId, {
      content,
      ...(this.mode?.kind === 'reply' ? { replyToId: this.mode.message.id } : {}),
      ...(attachments.length ? { attachments } : {}),
    });
    this.input.value = '';
    this.uploads = [];
    this.#renderUploads();
    this.#setMode(null);
    this.#stopTyping();
    this.render(true);
  }

  #keydown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === 'Escape' && this.mode) {
      event.preventDefault();
      if (this.mode.kind === 'edit') this.input.value = '';
      this.#setMode(null);
    }
  }

  #setMode(mode) {
    this.mode = mode;
    clear(this.modeBar);
    this.modeBar.hidden = !mode;
    if (!mode) return;
    const m = mode.message;
    this.modeBar.append(
      h('span', {}, mode.kind === 'edit' ? 'Editing your message' : `Replying to: ${(m.content || '').slice(0, 80)}`),
      h('button.secondary', { type: 'button', id: 'mode-cancel', onclick: () => { if (mode.kind === 'edit') this.input.value = ''; this.#setMode(null); this.input.focus(); } },
        mode.kind === 'edit' ? 'Cancel edit (Esc)' : 'Cancel reply (Esc)'));
    if (mode.kind === 'edit') this.input.value = m.content;
    this.input.focus();
  }

  #typed() {
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REFRESH_MS) {
      this.typingSentAt = now;
      this.client.setTyping(this.chatId, true).catch(() => { /* typing is best effort */ });
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.#stopTyping(), TYPING_IDLE_MS);
  }

  #stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typingSentAt && this.chatId) this.client.setTyping(this.chatId, false).catch(() => { /* best effort */ });
    this.typingSentAt = 0;
  }

  async #pickFiles() {
    const files = [...this.fileInput.files];
    this.fileInput.value = '';
    await Promise.all(files.map(async (file) => {
      const entry = { name: file.name, state: 'uploading' };
      this.uploads.push(entry);
      this.#renderUploads();
      try {
        entry.id = await this.client.upload(file, { chatId: this.chatId });
        entry.state = 'ready';
      } catch (err) {
        entry.state = 'failed';
        announce(`Could not upload ${file.name}: ${err.message}`);
      }
      this.#renderUploads();
    }));
  }

  #renderUploads() {
    clear(this.uploadList);
    for (const u of this.uploads) {
      this.uploadList.append(h('li', { dataset: { state: u.state } },
        `📎 ${u.name} `, h('span.muted', {}, { uploading: '(uploading…)', ready: '(ready)', failed: '(failed)' }[u.state]),
        h('button.link', { type: 'button', 'aria-label': `Remove ${u.name}`, onclick: () => { this.uploads = this.uploads.filter((x) => x !== u); this.#renderUploads(); } }, '×')));
    }
  }
}
