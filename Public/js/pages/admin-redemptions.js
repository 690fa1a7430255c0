// Admin: redemption codes — batch create, list, disable, delete, CSV export.
import * as api from '../api.js';
import { h, money, statusBadge, button, toast, dateTime, download, toCSV, copyBox, QUOTA_PER_USD } from '../ui.js';
import { crudPage, formDialog } from './crud.js';

const CODE_STATUS = { 1: 'Unused', 2: 'Disabled', 3: 'Used' };

const codeOf = (item) => (typeof item === 'string' ? item : item.key || item.code || '');

function csvOf(items) {
  return toCSV(['id', 'name', 'kind', 'code', 'quota_units', 'usd', 'status', 'created_time', 'expired_time'],
    items.map((r) => (typeof r === 'string'
      ? ['', '', '', r, '', '', '', '', '']
      : [r.id, r.name, r.kind, codeOf(r), r.quota, (Number(r.quota || 0) / QUOTA_PER_USD).toFixed(6), CODE_STATUS[r.status] || r.status, r.created_time, r.expired_time])));
}

const createFields = [
  { name: 'name', label: 'Name', required: true, hint: 'Shown on every code of the batch.' },
  { name: 'count', label: 'How many codes', type: 'number', min: 1, default: 1, hint: '1 to 100.' },
  { name: 'kind', label: 'Kind', type: 'select', options: [['topup', 'Top-up: credits a user balance'], ['token', 'Token: issues an independent key']], default: 'topup' },
  { name: 'quota', label: 'Credit (USD)', type: 'usd', min: 0, default: 5 * QUOTA_PER_USD },
  { name: 'expires_days', label: 'Code expires after (days)', type: 'number', min: 1, hint: 'Empty: the code never expires.' },
  { name: 'valid_days', label: 'Token valid for (days, token codes)', type: 'number', min: 0, hint: 'From redemption; empty or 0 = never expires.' },
  { name: 'group', label: 'Group (token codes)', hint: 'Empty: default.' },
  { name: 'fallback_groups', label: 'Fallback groups (token codes)', type: 'list', hint: 'Comma-separated, at most 2.' },
  { name: 'model_limits', label: 'Models (token codes)', type: 'list', hint: 'Comma-separated; empty allows every model of the group.' },
];

export async function render(container) {
  await crudPage(container, {
    title: 'Redemption codes', noun: 'code', endpoint: '/api/redemption/', canEdit: false,
    fields: createFields, createLabel: 'Create codes',
    intro: 'Top-up codes add credit to a user’s balance; token codes issue an independent key with its own credit. Each code works once.',
    onCreate: (reload) => {
      formDialog('Create codes', createFields, null, async (body) => {
        const payload = { ...body };
        payload.expired_time = body.expires_days ? Math.floor(Date.now() / 1000) + body.expires_days * 86400 : -1;
        delete payload.expires_days;
        if (!payload.valid_days) payload.valid_days = 0;
        const codes = await api.post('/api/redemption/', payload);
        await reload();
        return codes;
      }, {
        submitLabel: 'Create',
        after: (codes, dialog, form) => {
          const list = Array.isArray(codes) ? codes : [codes];
          const text = list.map(codeOf).join('\n');
          form.replaceWith(h('div', { id: 'created-codes' },
            h('p', { role: 'status', text: `${list.length} code(s) created.` }),
            copyBox(text, 'Codes', { multiline: true }),
            h('div', { class: 'form-actions' },
              button('Download CSV', () => download('sluice-redemption-codes.csv', csvOf(list)), { id: 'codes-csv' }),
              button('Done', () => dialog.close(), { kind: 'primary' }))));
        },
      });
    },
    headerActions: (items) => [button('Export CSV', () => download('sluice-redemption-codes.csv', csvOf(items())), { id: 'export-csv' })],
    columns: [
      { label: 'ID', class: 'num', render: (r) => String(r.id) },
      { label: 'Name', render: (r) => r.name },
      { label: 'Kind', render: (r) => (r.kind === 'token' ? 'Token' : 'Top-up') },
      { label: 'Code', render: (r) => h('code', { text: codeOf(r) }) },
      { label: 'Credit', class: 'num', render: (r) => money(r.quota) },
      { label: 'Status', render: (r) => statusBadge(r.status, CODE_STATUS) },
      { label: 'Created', render: (r) => dateTime(r.created_time) },
      { label: 'Redeemed', render: (r) => (r.redeemed_time ? dateTime(r.redeemed_time) : '—') },
    ],
    rowActions: (code, reload) => [
      code.status !== 3 ? button(code.status === 1 ? 'Disable' : 'Enable', async () => {
        try {
          await api.put('/api/redemption/', { id: code.id, status: code.status === 1 ? 2 : 1 });
          toast(`Code ${code.name} ${code.status === 1 ? 'disabled' : 'enabled'}`);
          await reload();
        } catch (error) {
          toast(error.message);
        }
      }, { dataset: { action: code.status === 1 ? 'disable' : 'enable' } }) : '',
    ],
  });
}
