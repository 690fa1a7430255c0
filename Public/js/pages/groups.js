// Groups a user may choose for their keys: multiplier, models and rate limits; and the price of every model in them
// (`GET /api/pricing`: [{model, input_price, output_price, call_price, max_output_tokens, groups: [{group, ratio,
// input_price, output_price, call_price}]}], USD per 1M tokens or per call, the group's ratio applied).
import * as api from '../api.js';
import { h, pageHeader, table, number, notice } from '../ui.js';

const usd = (value) => (value === null || value === undefined ? '—' : `$${Number(Number(value).toFixed(6))}`);

function pricingSection(prices, own) {
  const section = h('section', { class: 'card', 'aria-labelledby': 'pricing-heading', id: 'pricing' },
    h('h2', { id: 'pricing-heading', text: 'Model prices' }),
    h('p', { class: 'muted', text: 'USD per 1M input and output tokens (or per call, for per-call keys), in each group that offers the model.' }));
  section.append(table([
    { label: 'Model', render: (p) => h('code', { text: p.model }) },
    { label: 'Base input / output', class: 'num', render: (p) => `${usd(p.input_price)} / ${usd(p.output_price)}` },
    { label: 'Per call', class: 'num', render: (p) => usd(p.call_price) },
    { label: 'In your groups', render: (p) => (p.groups.length
      ? h('ul', { class: 'price-groups' }, p.groups.map((g) => h('li', { dataset: { group: g.group } },
        h('strong', { text: g.group }), g.group === own ? ' (yours)' : '', ` ×${g.ratio}: ${usd(g.input_price)} / ${usd(g.output_price)}`,
        g.call_price !== null && g.call_price !== undefined ? ` · ${usd(g.call_price)} per call` : '')))
      : 'Not offered in a group you may choose') },
    { label: 'Max output', class: 'num', render: (p) => number(p.max_output_tokens) },
  ], prices, { caption: 'Model prices', empty: 'No model has a price yet.', rowAttrs: (p) => ({ dataset: { model: p.model } }) }));
  return section;
}

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
  try {
    container.append(pricingSection(await api.get('/api/pricing'), own));
  } catch (error) {
    container.append(notice(error.message, 'error'));
  }
}
