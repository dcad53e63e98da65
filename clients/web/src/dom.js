// Tiny DOM helpers: `h` builds an element from a tag, attributes and children (text is
// always set as text, never parsed as HTML), `clear` empties a node, `announce` speaks a
// short message through the page's polite live region.

/**
 * @param {string} tag e.g. 'button' or 'li.msg'
 * @param {Record<string, any>} [attrs] attributes; `on*` functions become listeners,
 *   `class`, `dataset` ({key: value}) and booleans (`hidden`, `disabled`) are handled
 * @param {...(Node|string|number|null|undefined|false|Array)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = [el.className, value].filter(Boolean).join(' ');
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = String(v);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else if (key === 'value') {
      el.value = value;
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Removes every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Says `text` through the polite live region (#announcer) for screen readers. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node in a later task is announced even when the text repeats.
  setTimeout(() => { region.textContent = text; }, 50);
}

/** A short local time (hh:mm) of an RFC 3339 timestamp. */
export function shortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
