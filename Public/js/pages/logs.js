// Call logs and usage tables shared by the account, token, token-session and admin pages.
import * as api from '../api.js';
import { h, field, money, number, dateTime, table, pager, notice, usdText } from '../ui.js';
import { dailyFromHourly, dayStart, spendChart } from '../chart.js';

/** A log table with a model filter and pages. `path` is the endpoint; `fixed` query values always sent. */
export function logsSection({ path, fixed = {}, showToken = true, showUser = false, pageSize = 20, heading = 'Call logs' }) {
  const section = h('section', { class: 'card', 'aria-labelledby': `${heading.replace(/\W/g, '')}-heading` });
  const model = h('input', { type: 'search', name: 'model_name', autocomplete: 'off' });
  const body = h('div', { class: 'logs-body' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter logs' }, field('Model', model), h('button', { type: 'submit', class: 'btn btn-secondary', text: 'Filter' }));
  section.append(h('h2', { id: `${heading.replace(/\W/g, '')}-heading`, text: heading }), form, body);
  let page = 1;
  async function load() {
    body.replaceChildren(notice('Loading logs…'));
    try {
      const data = api.pageOf(await api.get(`${path}${api.query({ ...fixed, model_name: model.value.trim(), p: page, size: pageSize })}`));
      body.replaceChildren(logTable(data.items, { showToken, showUser }),
        pager(page, pageSize, data.total, (p) => { page = p; load(); }));
    } catch (error) {
      body.replaceChildren(notice(unavailable(error, 'Call logs'), 'error'));
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); page = 1; load(); });
  load();
  return section;
}

/** The message for a failed load, naming endpoints that this server does not have yet. */
export function unavailable(error, what) {
  return error.status === 404 && /^Not found/.test(error.message) ? `${what} are not available on this server yet.` : error.message;
}

export function logTable(logs, { showToken = true, showUser = false } = {}) {
  const columns = [
    { label: 'Time', render: (l) => dateTime(l.created_at) },
    showUser ? { label: 'User', render: (l) => l.username || String(l.user_id ?? '—') } : null,
    showToken ? { label: 'Token', render: (l) => l.token_name || String(l.token_id ?? '—') } : null,
    { label: 'Model', render: (l) => l.model_name || '—' },
    { label: 'Group', render: (l) => l.group || '—' },
    { label: 'Prompt', class: 'num', render: (l) => number(l.prompt_tokens) },
    { label: 'Completion', class: 'num', render: (l) => number(l.completion_tokens) },
    { label: 'Cost', class: 'num', render: (l) => money(l.quota) },
    { label: 'Time taken', class: 'num', render: (l) => (l.use_time_ms !== undefined ? `${(l.use_time_ms / 1000).toFixed(2)} s` : '—') },
    { label: 'Stream', render: (l) => (l.is_stream ? 'Yes' : 'No') },
    showUser ? { label: 'Channel', render: (l) => String(l.channel ?? '—') } : null,
    { label: 'IP', render: (l) => l.ip || '—' },
  ].filter(Boolean);
  return table(columns, logs, { caption: 'Call logs', empty: 'No calls in this period.' });
}

/** Usage over the last days from `/api/data/self`: chart and per-day/model table; `tokenId` narrows it. */
export function usageSection({ tokenId, heading = 'Spend' } = {}) {
  const section = h('section', { class: 'card', 'aria-labelledby': 'usage-heading' });
  const range = h('select', { name: 'days' }, [7, 14, 30].map((d) => h('option', { value: String(d), selected: d === 14, text: `Last ${d} days` })));
  const body = h('div', { class: 'usage-body' });
  section.append(h('div', { class: 'section-head' }, h('h2', { id: 'usage-heading', text: heading }), field('Period', range)), body);
  async function load() {
    const days = Number(range.value);
    body.replaceChildren(notice('Loading usage…'));
    try {
      const start = dayStart(days - 1);
      const end = Math.floor(Date.now() / 1000) + 3600;
      let rows = await api.get(`/api/data/self${api.query({ start_timestamp: start, end_timestamp: end })}`);
      rows = api.pageOf(rows).items;
      if (tokenId !== undefined) rows = rows.filter((row) => String(row.token_id) === String(tokenId));
      body.replaceChildren(spendChart(dailyFromHourly(rows, days)), usageTable(rows));
    } catch (error) {
      body.replaceChildren(notice(unavailable(error, 'Usage statistics'), 'error'));
    }
  }
  range.addEventListener('change', load);
  load();
  return section;
}

/** Per day and model: requests, tokens and spend. */
export function usageTable(rows) {
  const groups = new Map();
  for (const row of rows) {
    const date = new Date(Number(row.hour) * 1000);
    const day = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
    const key = `${day}\u0000${row.model_name}`;
    const entry = groups.get(key) || { day, model: row.model_name, count: 0, prompt: 0, completion: 0, quota: 0 };
    entry.count += Number(row.count || 0);
    entry.prompt += Number(row.prompt_tokens || 0);
    entry.completion += Number(row.completion_tokens || 0);
    entry.quota += Number(row.quota || 0);
    groups.set(key, entry);
  }
  const entries = [...groups.values()].sort((a, b) => (a.day === b.day ? b.quota - a.quota : a.day < b.day ? 1 : -1));
  return table([
    { label: 'Day', render: (e) => e.day },
    { label: 'Model', render: (e) => e.model || '—' },
    { label: 'Requests', class: 'num', render: (e) => number(e.count) },
    { label: 'Prompt tokens', class: 'num', render: (e) => number(e.prompt) },
    { label: 'Completion tokens', class: 'num', render: (e) => number(e.completion) },
    { label: 'Spend', class: 'num', render: (e) => money(e.quota) },
  ], entries, { caption: 'Usage per day and model', empty: 'No usage in this period.' });
}

/** A row of figures (balance, used, requests...). */
export function stats(items) {
  return h('dl', { class: 'stats' }, items.map(([label, value]) => h('div', { class: 'stat' }, h('dt', { text: label }), h('dd', {}, value))));
}

export { usdText };
