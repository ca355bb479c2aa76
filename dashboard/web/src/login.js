// The login page: a user name and password from the server's
// configuration, or an API token; the server answers with a session cookie.

import { api } from './api.js';
import { el } from './table.js';

export function loginPage(main, params) {
  const user = el('input', { id: 'login-user', autocomplete: 'username' });
  const password = el('input', { id: 'login-password', type: 'password', autocomplete: 'current-password' });
  const token = el('input', { id: 'login-token', type: 'password', autocomplete: 'off' });
  const msg = el('p', { class: 'error', id: 'login-error' });
  const next = params.get('next') || '#/';
  async function submit(body) {
    try {
      await api('/api/v1/login', { method: 'POST', body: JSON.stringify(body) });
      location.hash = next.startsWith('#/login') ? '#/' : next;
      location.reload();
    } catch (e) { msg.textContent = e.message; }
  }
  const form = el('form', { class: 'login', onsubmit: (e) => {
    e.preventDefault();
    if (token.value) submit({ token: token.value });
    else submit({ user: user.value, password: password.value });
  } },
  el('h1', {}, 'Log in to Osprey'),
  el('label', {}, 'User'), user, el('label', {}, 'Password'), password,
  el('p', { class: 'muted' }, 'or'),
  el('label', {}, 'API token'), token,
  el('button', { class: 'primary', type: 'submit', id: 'login-submit' }, 'Log in'), msg);
  main.replaceChildren(form);
}
