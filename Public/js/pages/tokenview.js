// The scoped token view after token login: that one token, its balance, spend and logs.
import * as api from '../api.js';
import { h, money, expiry, statusBadge, pageHeader, notice, dateTime } from '../ui.js';
import { dailyFromLogs, spendChart } from '../chart.js';
import { logTable, stats, unavailable } from './logs.js';

export async function render(container, ctx) {
  const token = await api.get('/api/token/self');
  container.append(
    pageHeader(`Token ${token.name}`),
    h('p', { class: 'muted lead', text: 'You are signed in with one token: you can see its balance, usage and logs, and nothing else.' }),
    h('section', { class: 'card', 'aria-label': 'Token summary' }, stats([
      ['Status', statusBadge(token.status)],
      ['Used', money(token.used_quota, { beside: true })],
      ['Remaining', token.unlimited_quota ? 'Unlimited' : money(token.remain_quota, { beside: true })],
      ['Expires', expiry(token.expired_time)],
      ['Key', h('code', { text: token.key })],
      ['Last used', dateTime(token.accessed_time)],
    ])));
  const usage = h('section', { class: 'card', 'aria-labelledby': 'token-usage-heading' }, h('h2', { id: 'token-usage-heading', text: 'Balance seen through the key' }));
  container.append(usage);
  try {
    const data = await api.get('/api/usage/token');
    const pairs = Object.entries(data || {}).filter(([, v]) => typeof v !== 'object');
    usage.append(h('dl', { class: 'stats' }, pairs.map(([k, v]) => h('div', { class: 'stat' }, h('dt', { text: k.replace(/_/g, ' ') }), h('dd', { text: String(v) })))));
  } catch (error) {
    usage.append(notice(unavailable(error, 'Usage figures'), 'error'));
  }
  const logs = h('section', { class: 'card', 'aria-labelledby': 'token-logs-heading' }, h('h2', { id: 'token-logs-heading', text: 'Spend and calls' }));
  container.append(logs);
  try {
    const items = api.pageOf(await api.get('/api/log/token?p=1&size=100')).items;
    logs.append(spendChart(dailyFromLogs(items, 14)), logTable(items, { showToken: false }));
  } catch (error) {
    logs.append(notice(unavailable(error, 'Call logs'), 'error'));
  }
}
