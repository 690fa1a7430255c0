// The account's usage: balance, spend per day (chart and table) and call logs.
import * as api from '../api.js';
import { h, money, number, pageHeader } from '../ui.js';
import { logsSection, usageSection, stats } from './logs.js';

export async function render(container, ctx) {
  const user = await api.get('/api/user/self');
  container.append(
    pageHeader('Usage and logs'),
    h('section', { class: 'card', 'aria-label': 'Balance' }, stats([
      ['Balance', money(user.quota, { beside: true })],
      ['Used', money(user.used_quota, { beside: true })],
      ['Requests', number(user.request_count)],
      ['Group', user.group],
    ])),
    usageSection({ heading: 'Spend over the last days' }),
    logsSection({ path: '/api/log/self' }));
}
