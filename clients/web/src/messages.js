// One message as a list item: sender, reply excerpt, content (or tombstone), attachments,
// reactions, pin badge, time, "edited", receipt ticks (own messages) or the pending state of
// an optimistic echo, and the action buttons. Items are keyed by clientMessageId, which an
// optimistic message and its saved copy share, so the echo turns into the saved message in place.

import { h, shortTime } from './dom.js';

export const QUICK_REACTIONS = [['👍', 'thumbs up'], ['❤️', 'heart'], ['😂', 'laughing']];

const STATUS_TEXT = { sending: 'Sending…', failed: 'Not sent', sent: 'Sent', delivered: 'Delivered', read: 'Read' };
const STATUS_TICKS = { sending: '🕓', failed: '⚠', sent: '✓', delivered: '✓✓', read: '✓✓' };

/** The key of a message in the list. */
export const messageKey = (m) => m.clientMessageId ?? m.id;

/** The delivery state shown for a message: its pending state, else its receipt status. */
export const messageState = (m) => m.pending || m.status || 'sent';

/**
 * Everything the item shows, as a string: an item is rebuilt only when this changes.
 * @param {any} m message
 * @param {{mine: boolean, pinned: boolean, senderName: string}} ctx
 */
export function signature(m, ctx) {
  return JSON.stringify([m.id, m.sequence, m.content, m.editedAt, m.deletedAt, messageState(m),
    m.reactions, m.attachments?.map((a) => a.id), m.replyTo, ctx.pinned, ctx.senderName]);
}

/**
 * @param {any} m message
 * @param {{mine: boolean, pinned: boolean, senderName: string, replyName: string}} ctx
 * @param {Record<string, (m: any, arg?: any) => void>} act handlers: reply, edit, remove, react, pin, retry
 * @returns {HTMLLIElement}
 */
export function renderMessage(m, ctx, act) {
  const state = messageState(m);
  const deleted = Boolean(m.deletedAt);
  const classes = ['msg', ctx.mine ? 'mine' : 'theirs', m.pending ? `pending ${m.pending}` : '', deleted ? 'deleted' : '']
    .filter(Boolean).join(' ');
  const label = `#${m.sequence ?? '…'}`;
  const actions = deleted || !m.id ? [] : [
    h('button.action', { type: 'button', onclick: () => act.reply(m) }, 'Reply'),
    ...QUICK_REACTIONS.map(([emoji, name]) => {
      const on = m.reactions?.some((r) => r.emoji === emoji && r.me);
      return h('button.action', { type: 'button', 'aria-pressed': on ? 'true' : 'false', 'aria-label': `React with ${name}`, title: `React with ${name}`, onclick: () => act.react(m, emoji, !on) }, emoji);
    }),
    h('button.action', { type: 'button', 'aria-pressed': ctx.pinned ? 'true' : 'false', onclick: () => act.pin(m, !ctx.pinned) }, ctx.pinned ? 'Unpin' : 'Pin'),
    ctx.mine ? h('button.action', { type: 'button', onclick: () => act.edit(m) }, 'Edit') : null,
    ctx.mine ? h('button.action.danger', { type: 'button', onclick: () => act.remove(m) }, 'Delete') : null,
  ];
  return h('li', {
    class: classes,
    dataset: { cmid: m.clientMessageId, id: m.id, seq: m.sequence, status: ctx.mine ? state : null, pinned: ctx.pinned ? 'true' : null },
  },
  h('div.msg-head', {},
    h('span.sender', {}, ctx.senderName),
    h('time', { datetime: m.sentAt ?? m.createdAt }, shortTime(m.sentAt ?? m.createdAt)),
    ctx.pinned ? h('span.badge.pin', {}, '📌 Pinned') : null),
  m.replyTo ? h('blockquote.reply-to', {}, h('span.sender', {}, `${ctx.replyName}:`), ' ', m.replyTo.excerpt || 'Message deleted') : null,
  deleted
    ? h('p.content.tombstone', {}, 'Message deleted')
    : h('p.content', {}, m.content),
  attachments(m),
  reactions(m, act),
  h('div.msg-foot', {},
    actions.length ? h('div.actions', { role: 'group', 'aria-label': `Actions for message ${label}` }, actions) : null,
    m.editedAt && !deleted ? h('span.edited', {}, 'edited') : null,
    ctx.mine ? h('span', { class: `ticks ${state}`, title: STATUS_TEXT[state] },
      h('span', { 'aria-hidden': 'true' }, STATUS_TICKS[state] ?? ''),
      h('span.visually-hidden', {}, STATUS_TEXT[state] ?? state)) : null,
    m.pending === 'failed' ? h('button.action', { type: 'button', onclick: () => act.retry(m) }, 'Retry') : null));
}

function attachments(m) {
  if (!m.attachments?.length) return null;
  return h('ul.attachments', { 'aria-label': 'Attachments' }, m.attachments.map((a) => h('li', {},
    a.contentType?.startsWith('image/') && a.url
      ? h('a', { href: a.url, target: '_blank', rel: 'noopener' }, h('img', { src: a.url, alt: a.fileName, loading: 'lazy' }))
      : h('a', { href: a.url || null, target: '_blank', rel: 'noopener' }, `📎 ${a.fileName} (${formatSize(a.size)})`))));
}

function reactions(m, act) {
  if (!m.reactions?.length || m.deletedAt) return null;
  return h('div.reactions', { role: 'group', 'aria-label': 'Reactions' }, m.reactions.map((r) => h('button.reaction', {
    type: 'button',
    'aria-pressed': r.me ? 'true' : 'false',
    'aria-label': `${r.emoji} ${r.count}${r.me ? ', including you' : ''}`,
    dataset: { emoji: r.emoji, count: r.count },
    onclick: () => act.react(m, r.emoji, !r.me),
  }, `${r.emoji} ${r.count}`)));
}

function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
