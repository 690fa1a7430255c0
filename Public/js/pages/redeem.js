// Redeem a code: a top-up code credits the balance, a token code creates an independent key.
import * as api from '../api.js';
import { h, field, formError, pageHeader, money, copyBox } from '../ui.js';

export async function render(container, ctx) {
  const user = await api.get('/api/user/self');
  const balance = h('p', { class: 'balance', id: 'balance' }, 'Balance: ', money(user.quota, { beside: true }));
  const key = h('input', { type: 'text', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true, class: 'code' });
  const error = formError();
  const result = h('div', { class: 'redeem-result', id: 'redeem-result', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Redeem' });
  const form = h('form', { class: 'form card narrow', id: 'redeem-form', novalidate: true },
    field('Redemption code', key, 'A top-up code adds to your balance; a token code gives you a new key with its own credit.'),
    error.element, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    result.replaceChildren();
    if (!key.value.trim()) return error.show('Enter a redemption code.');
    submit.disabled = true;
    try {
      const data = await api.post('/api/user/topup', { key: key.value.trim() });
      if (data && typeof data === 'object' && data.key) {
        result.append(h('p', { role: 'status', text: `The code gave you the key “${data.name}”.` }), copyBox(data.key, 'API key'));
      } else {
        result.append(h('p', { role: 'status' }, 'Redeemed: ', money(Number(data), { beside: true }), ' added to your balance.'));
      }
      key.value = '';
      const fresh = await api.get('/api/user/self');
      balance.replaceChildren('Balance: ', money(fresh.quota, { beside: true }));
    } catch (failure) {
      error.show(failure.message);
    }
    submit.disabled = false;
  });
  container.append(pageHeader('Redeem a code'), balance, form, result);
}
