// Admin: redemption codes — batch create, search, list, disable/enable, delete, CSV export.
// Rows of `/api/redemption/`: {id, name, kind: topup|token, key (the code), status (1 unused, 2 disabled, 3 used),
// quota, expired_time (-1 never), valid_days, group, fallback_groups, model_limits, created_time, redeemed_time,
// used_user_id, redeemed_token_id}. `POST /api/redemption/` answers the new codes as a list of strings.
// `GET /api/redemption/export?ids=1,2` (or `?name=<batch>`) answers the CSV with a header row.
import * as api from '../api.js';
import { h, field, money, statusBadge, button, toast, dateTime, expiry, download, toCSV, copyBox, QUOTA_PER_USD } from '../ui.js';
import { crudPage, formDialog } from './crud.js';

const CODE_STATUS = { 1: 'Unused', 2: 'Disabled', 3: 'Used' };

/** Downloads the server's CSV export of `ids`; errors come back as the envelope's message. */
async function exportCSV(ids) {
  const response = await fetch(`/api/redemption/export${api.query({ ids: ids.join(',') })}`, { credentials: 'same-origin' });
  if (!response.ok) {
    let message = `The export failed (HTTP ${response.status}).`;
    try {
      message = (await response.json()).message || message;
    } catch {
      // not JSON
    }
    throw new Error(message);
  }
  const disposition = response.headers.get('Content-Disposition') || '';
  const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || 'redemptions.csv';
  download(name, await response.text());
}

/** The ids of freshly created `codes` of batch `name` (the create answer holds the codes only). */
async function idsOf(name, codes) {
  const wanted = new Set(codes);
  const found = [];
  const page = api.pageOf(await api.get(`/api/redemption/${api.query({ keyword: name, p: 1, size: 100 })}`));
  for (const row of page.items) if (wanted.has(row.key)) found.push(row.id);
  return found;
}

const createFields = [
  { name: 'name', label: 'Batch name', required: true, hint: 'Shown on every code of the batch; search and export by it.' },
  { name: 'count', label: 'How many codes', type: 'number', min: 1, default: 1, hint: '1 to 100.' },
  { name: 'kind', label: 'Kind', type: 'select', options: [['topup', 'Top-up: credits a user balance'], ['token', 'Token: issues an independent key']], default: 'topup' },
  { name: 'quota', label: 'Credit (USD)', type: 'usd', min: 0, default: 5 * QUOTA_PER_USD, required: true },
  { name: 'expires_days', label: 'Code expires after (days)', type: 'number', min: 1, hint: 'Empty: the code never expires.' },
  { name: 'valid_days', label: 'Token valid for (days, token codes)', type: 'number', min: 0, hint: 'From redemption; empty or 0 = never expires.' },
  { name: 'group', label: 'Group (token codes)', hint: 'Empty: default.' },
  { name: 'fallback_groups', label: 'Fallback groups (token codes)', type: 'list', hint: 'Comma-separated, at most 2.' },
  { name: 'model_limits', label: 'Models (token codes)', type: 'list', hint: 'Comma-separated; empty allows every model of the group.' },
];

export async function render(container) {
  const keyword = h('input', { type: 'search', name: 'keyword', autocomplete: 'off' });
  const search = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search codes', id: 'code-search' },
    field('Batch name', keyword), h('button', { type: 'submit', class: 'btn btn-secondary', text: 'Search' }));
  let listed = () => [];
  const page = await crudPage(container, {
    title: 'Redemption codes', noun: 'code', endpoint: '/api/redemption/', canEdit: false,
    fields: createFields, createLabel: 'Create codes',
    query: () => ({ keyword: keyword.value.trim() }),
    intro: 'Top-up codes add credit to a user’s balance; token codes issue an independent key with its own credit. Each code works once.',
    onCreate: (reload) => {
      formDialog('Create codes', createFields, null, async (body) => {
        const payload = { ...body };
        payload.expired_time = body.expires_days ? Math.floor(Date.now() / 1000) + body.expires_days * 86400 : -1;
        delete payload.expires_days;
        if (!payload.valid_days) payload.valid_days = 0;
        if (payload.kind === 'topup') {
          for (const name of ['valid_days', 'group', 'fallback_groups', 'model_limits']) delete payload[name];
        }
        const codes = await api.post('/api/redemption/', payload);
        await reload();
        return { codes: Array.isArray(codes) ? codes : [codes], batch: payload };
      }, {
        submitLabel: 'Create',
        after: ({ codes, batch }, dialog, form) => {
          const csv = button('Download CSV', async () => {
            try {
              const ids = await idsOf(batch.name, codes);
              if (ids.length === codes.length) await exportCSV(ids);
              else {
                download('redemptions-new.csv', toCSV(['name', 'kind', 'key', 'quota', 'expired_time'],
                  codes.map((code) => [batch.name, batch.kind, code, batch.quota, batch.expired_time])));
              }
            } catch (error) {
              toast(error.message);
            }
          }, { id: 'codes-csv' });
          form.replaceWith(h('div', { id: 'created-codes' },
            h('p', { role: 'status', text: `${codes.length} code(s) created in batch “${batch.name}”.` }),
            copyBox(codes.join('\n'), 'Codes', { multiline: true }),
            h('div', { class: 'form-actions' }, csv, button('Done', () => dialog.close(), { kind: 'primary' }))));
        },
      });
    },
    headerActions: (items) => {
      listed = items;
      return [button('Export CSV', async () => {
        const ids = listed().map((r) => r.id);
        if (!ids.length) return toast('No codes to export');
        try {
          await exportCSV(ids);
          toast(`${ids.length} code(s) exported`);
        } catch (error) {
          toast(error.message);
        }
      }, { id: 'export-csv', title: 'The codes listed on this page' })];
    },
    columns: [
      { label: 'ID', class: 'num', render: (r) => String(r.id) },
      { label: 'Batch', render: (r) => r.name },
      { label: 'Kind', render: (r) => (r.kind === 'token' ? `Token${r.group ? ` · ${r.group}` : ''}${r.valid_days ? ` · ${r.valid_days} d` : ''}` : 'Top-up') },
      { label: 'Code', class: 'code-cell', render: (r) => h('code', { text: r.key }) },
      { label: 'Credit', class: 'num', render: (r) => money(r.quota) },
      { label: 'Status', render: (r) => h('span', {}, statusBadge(r.status, CODE_STATUS), r.status === 3
        ? h('span', { class: 'muted small', text: ` ${dateTime(r.redeemed_time)}${r.used_user_id ? ` · user #${r.used_user_id}` : ''}${r.redeemed_token_id ? ` · key #${r.redeemed_token_id}` : ''}` })
        : '') },
      { label: 'Expires', render: (r) => expiry(r.expired_time) },
      { label: 'Created', render: (r) => dateTime(r.created_time) },
    ],
    rowActions: (code, reload) => [
      code.status !== 3 ? button(code.status === 1 ? 'Disable' : 'Enable', async () => {
        try {
          await api.put('/api/redemption/', { id: code.id, status: code.status === 1 ? 2 : 1 });
          toast(`Code #${code.id} ${code.status === 1 ? 'disabled' : 'enabled'}`);
          await reload();
        } catch (error) {
          toast(error.message);
        }
      }, { dataset: { action: code.status === 1 ? 'disable' : 'enable' }, 'aria-label': `${code.status === 1 ? 'Disable' : 'Enable'} code #${code.id}` }) : '',
    ],
    nameOf: (r) => r.name,
    labelOf: (r) => `#${r.id} of batch ${r.name}`,
  });
  search.addEventListener('submit', (event) => { event.preventDefault(); page.reload(true); });
  container.querySelector('.crud-list').before(search);
}
