// Redeem a code: a top-up code credits the balance, a token code creates an independent key (`POST /api/user/topup`
// answers the quota credited, or the new token with its full key). Bind an independent key, named by its sk- key or
// by the code that issued it, to the account (`POST /api/token/bind`, answers the token with its key masked).
import * as api from '../api.js';
import { h, field, formError, pageHeader, money, copyBox } from '../ui.js';

/** A one-field form in a card: `submit(value)` answers the nodes to show below it. */
function keyForm({ id, title, label, hint, submitLabel, empty, submit }) {
  const headingId = `${id}-heading`;
  const key = h('input', { type: 'text', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true, class: 'code' });
  const error = formError();
  const result = h('div', { class: 'redeem-result', id: `${id}-result`, 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'btn btn-primary', text: submitLabel });
  const form = h('form', { class: 'form', id: `${id}-form`, novalidate: true, 'aria-labelledby': headingId },
    field(label, key, hint), error.element, h('div', { class: 'form-actions' }, button));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    result.replaceChildren();
    if (!key.value.trim()) return error.show(empty);
    button.disabled = true;
    try {
      result.append(...await submit(key.value.trim()));
      key.value = '';
    } catch (failure) {
      error.show(failure.message);
    }
    button.disabled = false;
  });
  return h('section', { class: 'card narrow', 'aria-labelledby': headingId }, h('h2', { id: headingId, text: title }), form, result);
}

export async function render(container) {
  const user = await api.get('/api/user/self');
  const balance = h('p', { class: 'balance', id: 'balance' }, 'Balance: ', money(user.quota, { beside: true }));
  const refresh = async () => {
    const fresh = await api.get('/api/user/self');
    balance.replaceChildren('Balance: ', money(fresh.quota, { beside: true }));
  };
  container.append(pageHeader('Redeem a code'), balance,
    keyForm({
      id: 'redeem', title: 'Redeem a code', label: 'Redemption code', submitLabel: 'Redeem', empty: 'Enter a redemption code.',
      hint: 'A top-up code adds to your balance; a token code gives you a new key with its own credit.',
      submit: async (code) => {
        const data = await api.post('/api/user/topup', { key: code });
        if (data && typeof data === 'object' && data.key) {
          return [h('p', { role: 'status', text: `The code gave you the key “${data.name}”. Copy it now: it is shown in full only once here.` }),
            copyBox(data.key, 'API key')];
        }
        await refresh();
        return [h('p', { role: 'status' }, 'Redeemed: ', money(Number(data), { beside: true }), ' added to your balance.')];
      },
    }),
    keyForm({
      id: 'bind', title: 'Add an independent key to your account', label: 'API key or redemption code', submitLabel: 'Add to my account',
      empty: 'Enter an sk- key or the code that issued it.',
      hint: 'A key issued by a token code and not yet bound to an account: it then shows on your API Tokens page and keeps its own credit.',
      submit: async (value) => {
        const token = await api.post('/api/token/bind', { key: value });
        return [h('p', { role: 'status' }, `The key “${token.name}” is now on your account. `, h('a', { href: '#/tokens', text: 'Open API Tokens' }))];
      },
    }));
}
