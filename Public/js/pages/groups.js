// Groups a user may choose for their keys: multiplier, models and rate limits.
import * as api from '../api.js';
import { h, pageHeader, table, number } from '../ui.js';

export async function render(container, ctx) {
  const groups = await api.get('/api/user/self/groups');
  const own = ctx.session.user ? ctx.session.user.group : '';
  container.append(
    pageHeader('Groups'),
    h('p', { class: 'muted lead', text: 'A group is a pricing tier: its multiplier scales the price of every call, and it decides which models a key may call. Pick one for each key, with up to two fallback groups.' }),
    table([
      { label: 'Group', render: (g) => h('span', {}, h('strong', { text: g.name }), g.name === own ? h('span', { class: 'badge badge-ok', text: 'your group' }) : '') },
      { label: 'Description', render: (g) => g.description || '—' },
      { label: 'Multiplier', class: 'num', render: (g) => `×${g.ratio}` },
      { label: 'Models', render: (g) => (g.models && g.models.length ? h('ul', { class: 'chips' }, g.models.map((m) => h('li', { class: 'chip', text: m }))) : 'Every model') },
      { label: 'Rate limits', render: (g) => `${g.rpm ? `${number(g.rpm)} RPM` : 'unlimited RPM'} · ${g.tpm ? `${number(g.tpm)} TPM` : 'unlimited TPM'}` },
    ], groups, { caption: 'Groups you may choose', rowAttrs: (g) => ({ dataset: { group: g.name } }) }));
}
