// The scoped token view after token login: that one token, its balance, spend and logs.
// A token session may read `GET /api/token/self`, `POST /api/token/self/key`, `GET /api/usage/token` and
// `GET /api/log/token`; `/api/data/self` refuses it (403), so the spend chart is summed from the call logs.
import * as api from '../api.js';
import { h, money, expiry, statusBadge, pageHeader, notice, dateTime, number, button, copyBox, toast } from '../ui.js';
import { logsSection, usageSection, hourlyFromLogs, stats, unavailable } from './logs.js';

const LOG_PAGE = 100;
const LOG_PAGES = 20;

/** Every call of the token between `start` and `end`, read page by page (at most LOG_PAGES pages). */
async function callRows(start, end) {
  const logs = [];
  let total = 0;
  for (let page = 1; page <= LOG_PAGES; page += 1) {
    const data = api.pageOf(await api.get(`/api/log/token${api.query({ type: 2, start_timestamp: start, end_timestamp: end, p: page, size: LOG_PAGE })}`));
    logs.push(...data.items);
    total = data.total;
    if (logs.length >= total || data.items.length < LOG_PAGE) break;
  }
  const note = logs.length < total ? `Drawn from the latest ${number(logs.length)} of ${number(total)} calls.` : null;
  return { rows: hourlyFromLogs(logs), note };
}

export async function render(container, ctx) {
  const token = await api.get('/api/token/self');
  const keyArea = h('div', { class: 'token-key', id: 'token-key' });
  const reveal = button('Show the full key', async () => {
    reveal.disabled = true;
    try {
      const data = await api.post('/api/token/self/key');
      keyArea.replaceChildren(copyBox(data.key, 'API key'));
      reveal.remove();
      keyArea.querySelector('input').focus();
    } catch (error) {
      toast(error.message);
      reveal.disabled = false;
    }
  }, { id: 'reveal-key' });
  keyArea.append(h('code', { text: token.key }), ' ', reveal);
  container.append(
    pageHeader(`Token ${token.name}`),
    h('p', { class: 'muted lead', text: 'You are signed in with one token: you can see its balance, usage and logs, and nothing else.' }),
    h('section', { class: 'card', 'aria-label': 'Token summary' }, stats([
      ['Status', statusBadge(token.status)],
      ['Used', money(token.used_quota, { beside: true })],
      ['Remaining', token.unlimited_quota ? 'Unlimited' : money(token.remain_quota, { beside: true })],
      ['Expires', expiry(token.expired_time)],
      ['Group', token.group || 'default'],
      ['Last used', dateTime(token.accessed_time)],
    ]), keyArea));

  const usage = h('section', { class: 'card', 'aria-labelledby': 'token-usage-heading', id: 'token-usage' },
    h('h2', { id: 'token-usage-heading', text: 'Totals seen through the key' }));
  container.append(usage);
  try {
    const data = await api.get('/api/usage/token');
    usage.append(stats([
      ['Granted', data.unlimited_quota ? 'Unlimited' : money(data.total_granted, { beside: true })],
      ['Used', money(data.total_used, { beside: true })],
      ['Available', data.unlimited_quota ? 'Unlimited' : money(data.total_available, { beside: true })],
      ['Requests', number(data.request_count)],
      ['Prompt tokens', number(data.prompt_tokens)],
      ['Completion tokens', number(data.completion_tokens)],
      ['Models', data.model_limits_enabled ? (data.model_limits || []).join(', ') || 'None' : 'Every model of the group'],
      ['Expires', expiry(data.expires_at)],
    ]));
  } catch (error) {
    usage.append(notice(unavailable(error, 'Usage figures'), 'error'));
  }
  container.append(
    usageSection({ heading: 'Spend over the last days', loadRows: callRows }),
    logsSection({ path: '/api/log/token', showToken: false, heading: 'Calls with this token' }));
}
