// Call logs and usage tables shared by the account, token, token-session and admin pages.
// Log pages answer `{items, total, page, page_size}`; rows carry {id, created_at, type, user_id, token_id, token_name,
// model_name, group, channel, channel_name, prompt_tokens, completion_tokens, quota, use_time_ms, is_stream, ip,
// content, request_id}. Types: 1 top-up, 2 call (consume), 3 management, 4 system, 5 error.
import * as api from '../api.js';
import { h, field, money, number, dateTime, table, pager, notice, usdText, uid } from '../ui.js';
import { dailyFromHourly, dayStart, spendChart } from '../chart.js';

export const LOG_TYPES = { 1: 'Top-up', 2: 'Call', 3: 'Management', 4: 'System', 5: 'Error' };

/**
 * A log table with filters and pages. `path` is the endpoint; `fixed` query values are always sent.
 * `showUser` (admin): a User column and a username filter; `showChannel`: the channel that served the call.
 */
export function logsSection({ path, fixed = {}, showToken = true, showUser = false, showChannel = showUser, pageSize = 20, heading = 'Call logs' }) {
  const headingId = uid('logs-heading');
  const section = h('section', { class: 'card logs', 'aria-labelledby': headingId });
  const model = h('input', { type: 'search', name: 'model_name', autocomplete: 'off' });
  const type = h('select', { name: 'type' },
    h('option', { value: '', text: 'Every type' }),
    Object.entries(LOG_TYPES).map(([value, label]) => h('option', { value, text: label })));
  const tokenName = showToken ? h('input', { type: 'search', name: 'token_name', autocomplete: 'off' }) : null;
  const username = showUser ? h('input', { type: 'search', name: 'username', autocomplete: 'off' }) : null;
  const body = h('div', { class: 'logs-body' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': `Filter ${heading.toLowerCase()}` },
    username ? field('Username', username) : null,
    tokenName ? field('Key name', tokenName) : null,
    field('Model', model),
    field('Type', type),
    h('button', { type: 'submit', class: 'btn btn-secondary', text: 'Filter' }));
  section.append(h('h2', { id: headingId, text: heading }), form, body);
  let page = 1;
  async function load() {
    body.replaceChildren(notice('Loading logs…'));
    try {
      const params = { ...fixed, model_name: model.value.trim(), type: type.value, p: page, size: pageSize };
      if (tokenName) params.token_name = tokenName.value.trim();
      if (username) params.username = username.value.trim();
      const data = api.pageOf(await api.get(`${path}${api.query(params)}`));
      body.replaceChildren(logTable(data.items, { showToken, showUser, showChannel }),
        pager(page, pageSize, data.total, (p) => { page = p; load(); }));
    } catch (error) {
      body.replaceChildren(notice(unavailable(error, 'Call logs'), 'error'));
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); page = 1; load(); });
  load();
  return section;
}

/** The message for a failed load, naming endpoints that this server does not have. */
export function unavailable(error, what) {
  return error.status === 404 && /^Not found/.test(error.message) ? `${what} are not available on this server.` : error.message;
}

export function logTable(logs, { showToken = true, showUser = false, showChannel = false } = {}) {
  const calls = (l) => l.type === 2;
  const columns = [
    { label: 'Time', render: (l) => dateTime(l.created_at) },
    { label: 'Type', render: (l) => h('span', { class: `badge ${l.type === 2 ? 'badge-muted' : l.type === 5 ? 'badge-warn' : 'badge-ok'}`, text: LOG_TYPES[l.type] || `Type ${l.type}` }) },
    showUser ? { label: 'User', render: (l) => (l.user_id === null || l.user_id === undefined ? '—' : `#${l.user_id}`) } : null,
    showToken ? { label: 'Key', render: (l) => l.token_name || (l.token_id ? `#${l.token_id}` : '—') } : null,
    { label: 'Model', render: (l) => l.model_name || '—' },
    { label: 'Group', render: (l) => l.group || '—' },
    { label: 'Prompt', class: 'num', render: (l) => (calls(l) ? number(l.prompt_tokens) : '—') },
    { label: 'Completion', class: 'num', render: (l) => (calls(l) ? number(l.completion_tokens) : '—') },
    { label: 'Cost', class: 'num', render: (l) => (l.type === 1 ? h('span', {}, '+', money(l.quota)) : money(l.quota)) },
    { label: 'Time taken', class: 'num', render: (l) => (calls(l) ? `${(Number(l.use_time_ms || 0) / 1000).toFixed(2)} s` : '—') },
    { label: 'Stream', render: (l) => (calls(l) ? (l.is_stream ? 'Yes' : 'No') : '—') },
    showChannel ? { label: 'Channel', render: (l) => (l.channel ? `${l.channel_name || 'channel'} #${l.channel}` : '—') } : null,
    { label: 'IP', render: (l) => l.ip || '—' },
    { label: 'Details', class: 'details', render: (l) => l.content || '—' },
  ].filter(Boolean);
  return table(columns, logs, { caption: 'Call logs', empty: 'No logs in this period.', rowAttrs: (l) => ({ dataset: { logId: l.id, type: l.type } }) });
}

/** The range picker of a usage section: answers {element, days()}. */
function rangePicker(onChange) {
  const range = h('select', { name: 'days' }, [7, 14, 30].map((d) => h('option', { value: String(d), selected: d === 14, text: `Last ${d} days` })));
  range.addEventListener('change', onChange);
  return { element: field('Period', range), days: () => Number(range.value) };
}

/**
 * Usage over the last days: chart and per-day/model table. By default from `/api/data/self` (hourly rows of the
 * account, `tokenId` narrows it to one key); `loadRows(start, end)` replaces the source (the token session).
 */
export function usageSection({ tokenId, heading = 'Spend', loadRows } = {}) {
  const headingId = uid('usage-heading');
  const section = h('section', { class: 'card', 'aria-labelledby': headingId });
  const body = h('div', { class: 'usage-body' });
  const picker = rangePicker(load);
  section.append(h('div', { class: 'section-head' }, h('h2', { id: headingId, text: heading }), picker.element), body);
  async function load() {
    const days = picker.days();
    body.replaceChildren(notice('Loading usage…'));
    try {
      const start = dayStart(days - 1);
      const end = Math.floor(Date.now() / 1000) + 3600;
      const { rows, note } = loadRows
        ? await loadRows(start, end)
        : { rows: api.pageOf(await api.get(`/api/data/self${api.query({ start_timestamp: start, end_timestamp: end, token_id: tokenId })}`)).items };
      body.replaceChildren(spendChart(dailyFromHourly(rows, days)), note ? notice(note) : '', usageTable(rows));
    } catch (error) {
      body.replaceChildren(notice(unavailable(error, 'Usage statistics'), 'error'));
    }
  }
  load();
  return section;
}

/** Hourly usage rows from call log rows, the shape of `/api/data/self`. */
export function hourlyFromLogs(logs) {
  const byKey = new Map();
  for (const log of logs) {
    if (log.type !== 2) continue;
    const hour = Math.floor(Number(log.created_at) / 3600) * 3600;
    const key = `${hour}\u0000${log.model_name}`;
    const row = byKey.get(key) || { hour, model_name: log.model_name, token_id: log.token_id, count: 0, prompt_tokens: 0, completion_tokens: 0, quota: 0 };
    row.count += 1;
    row.prompt_tokens += Number(log.prompt_tokens || 0);
    row.completion_tokens += Number(log.completion_tokens || 0);
    row.quota += Number(log.quota || 0);
    byKey.set(key, row);
  }
  return [...byKey.values()];
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
  ], entries, { caption: 'Usage per day and model', empty: 'No usage in this period.', rowAttrs: (e) => ({ dataset: { day: e.day, model: e.model } }) });
}

/** A row of figures (balance, used, requests...). */
export function stats(items) {
  return h('dl', { class: 'stats' }, items.map(([label, value]) => h('div', { class: 'stat' }, h('dt', { text: label }), h('dd', {}, value))));
}

export { usdText };
