// One token's usage and logs (from the API Tokens list: "Logs").
import * as api from '../api.js';
import { h, money, expiry, statusBadge, pageHeader, button } from '../ui.js';
import { logsSection, usageSection, stats } from './logs.js';
import { openExamples } from './examples.js';

export async function render(container, ctx) {
  const token = await api.get(`/api/token/${encodeURIComponent(ctx.params.id)}`);
  container.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/tokens', text: '← API Tokens' })),
    pageHeader(`Key ${token.name}`, button('Request example', () => openExamples(token), { id: 'detail-example' })),
    h('section', { class: 'card', 'aria-label': 'Key summary' }, stats([
      ['Status', statusBadge(token.status)],
      ['Used', money(token.used_quota, { beside: true })],
      ['Remaining', token.unlimited_quota ? 'Unlimited' : money(token.remain_quota, { beside: true })],
      ['Expires', expiry(token.expired_time)],
      ['Key', h('code', { text: token.key })],
    ])),
    usageSection({ tokenId: token.id, heading: 'Spend of this key' }),
    logsSection({ path: '/api/log/self', fixed: { token_id: token.id }, showToken: false, heading: 'Calls with this key' }));
}
