// Log in, create an account, and token login (with an sk- key or the redemption code that issued it).
import * as api from '../api.js';
import { h, field, formError } from '../ui.js';

export async function render(container, ctx) {
  const view = ctx.view;
  const card = h('section', { class: 'auth-card', 'aria-labelledby': 'page-title' });
  container.append(h('div', { class: 'auth-wrap' }, card));
  card.append(h('p', { class: 'auth-brand', 'aria-hidden': 'true', text: '≋ Sluice' }));
  if (view === 'token') return tokenLogin(card, ctx);
  const registering = view === 'register';
  card.append(h('h1', { tabindex: '-1', id: 'page-title', text: registering ? 'Create your account' : 'Log in to Sluice' }));
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, maxlength: '64' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: registering ? 'new-password' : 'current-password', required: true });
  const confirm = h('input', { type: 'password', name: 'confirm', autocomplete: 'new-password', required: true });
  const error = formError();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', text: registering ? 'Create account' : 'Log in' });
  const form = h('form', { class: 'form', id: registering ? 'register-form' : 'login-form', novalidate: true },
    field('Username', username),
    field('Password', password, registering ? 'At least 8 characters.' : null),
    registering ? field('Repeat the password', confirm) : null,
    error.element,
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    if (!username.value.trim() || !password.value) return error.show('Enter a username and a password.');
    if (registering && password.value !== confirm.value) return error.show('The two passwords differ.');
    submit.disabled = true;
    try {
      const credentials = { username: username.value.trim(), password: password.value };
      if (registering) await api.post('/api/user/register', credentials);
      await api.post('/api/user/login', credentials);
      await ctx.loadSession();
      ctx.navigate('/tokens');
    } catch (failure) {
      error.show(failure.message);
      submit.disabled = false;
    }
  });
  card.append(form, h('p', { class: 'auth-links' },
    registering
      ? h('a', { href: '#/login', text: 'I already have an account' })
      : h('a', { href: '#/register', text: 'Create an account' }),
    ' · ',
    h('a', { href: '#/token-login', text: 'Log in with a key or code' })));
}

function tokenLogin(card, ctx) {
  card.append(h('h1', { tabindex: '-1', id: 'page-title', text: 'Token login' }),
    h('p', { class: 'muted', text: 'See one token’s balance, usage and logs with its sk- key, or with the redemption code that issued it. No account needed.' }));
  const key = h('input', { type: 'text', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true, class: 'code' });
  const error = formError();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', text: 'Open token view' });
  const form = h('form', { class: 'form', id: 'token-login-form', novalidate: true },
    field('API key or redemption code', key), error.element, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    if (!key.value.trim()) return error.show('Enter an sk- key or a redemption code.');
    submit.disabled = true;
    try {
      await api.post('/api/token/login', { key: key.value.trim() });
      await ctx.loadSession();
      ctx.navigate(ctx.session.user ? '/tokens' : '/token');
    } catch (failure) {
      error.show(failure.message);
      submit.disabled = false;
    }
  });
  card.append(form, h('p', { class: 'auth-links' }, h('a', { href: '#/login', text: 'Log in with a username' })));
}
