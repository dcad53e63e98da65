// The sign-in screen: one form that logs in or registers (CourierClient.login / .register)
// and hands the AuthResponse to `onSignedIn`. Errors are shown in an alert region.

import { CourierClient } from '@courier-chat/client';

import { clear, h } from './dom.js';

/**
 * @param {HTMLElement} root
 * @param {string} baseUrl
 * @param {(auth: any) => void} onSignedIn
 */
export function renderAuth(root, baseUrl, onSignedIn) {
  clear(root);
  const error = h('p.form-error', { id: 'auth-error', role: 'alert' });
  const username = h('input', { id: 'auth-username', name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32, pattern: '[a-z0-9_.\\-]{3,32}', 'aria-describedby': 'auth-username-hint' });
  const displayName = h('input', { id: 'auth-display-name', name: 'displayName', autocomplete: 'name', maxlength: 64 });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, minlength: 8 });
  const login = h('button', { type: 'submit', value: 'login', id: 'auth-login' }, 'Log in');
  const register = h('button.secondary', { type: 'submit', value: 'register', id: 'auth-register' }, 'Register');

  const form = h('form.auth', { 'aria-labelledby': 'auth-title' },
    h('h1', { id: 'auth-title' }, 'Courier'),
    h('p.muted', {}, 'Log in, or register a new account.'),
    h('label', { for: 'auth-username' }, 'Username'), username,
    h('p.hint', { id: 'auth-username-hint' }, '3–32 of a–z, 0–9, _ . -'),
    h('label', { for: 'auth-display-name' }, 'Display name (when registering)'), displayName,
    h('label', { for: 'auth-password' }, 'Password (at least 8 characters)'), password,
    h('div.row', {}, login, register),
    error);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const action = event.submitter?.value ?? 'login';
    error.textContent = '';
    form.setAttribute('aria-busy', 'true');
    const credentials = { username: username.value.trim(), password: password.value };
    try {
      const auth = action === 'register'
        ? await CourierClient.register(baseUrl, { ...credentials, displayName: displayName.value.trim() || credentials.username })
        : await CourierClient.login(baseUrl, credentials);
      onSignedIn(auth);
    } catch (err) {
      error.textContent = describe(err, action);
    } finally {
      form.removeAttribute('aria-busy');
    }
  });

  root.append(form);
  root.removeAttribute('aria-busy');
  username.focus();
}

function describe(err, action) {
  if (err?.status === 409) return 'That username is taken: pick another, or log in.';
  if (err?.status === 401) return 'Wrong username or password.';
  if (err?.status === 429) return 'Too many attempts: wait a little and try again.';
  return `Could not ${action === 'register' ? 'register' : 'log in'}: ${err?.message ?? err}`;
}
