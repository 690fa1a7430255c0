// Admin: users, their balance (top-up), group, role and status.
import * as api from '../api.js';
import { h, money, statusBadge, button, number, field, formError, openDialog, toast, usdToQuota } from '../ui.js';
import { crudPage } from './crud.js';

const ROLES = { 1: 'User', 10: 'Admin', 100: 'Root' };
const USER_STATUS = { 1: 'Enabled', 2: 'Disabled' };

export async function render(container, ctx) {
  const me = ctx.session.user || {};
  let groupNames = ['default'];
  try {
    groupNames = api.pageOf(await api.get('/api/group/?p=1&size=200')).items.map((g) => g.name);
  } catch {
    // keep the default group only
  }
  const fields = () => [
    { name: 'username', label: 'Username', required: true, readonlyOnEdit: true },
    { name: 'password', label: 'Password', type: 'password', hint: 'At least 8 characters. When editing, leave empty to keep the password.' },
    { name: 'display_name', label: 'Display name' },
    { name: 'group', label: 'Group', type: 'select', options: groupNames.map((g) => [g, g]), default: 'default' },
    { name: 'role', label: 'Role', type: 'select', numeric: true, options: [[1, 'User'], [10, 'Admin']], default: 1, hidden: (item) => item && item.role >= 100 },
    { name: 'status', label: 'Status', type: 'select', numeric: true, options: [[1, 'Enabled'], [2, 'Disabled']], default: 1, hidden: (item) => !item },
    { name: 'quota', label: 'Balance (USD)', type: 'usd', min: 0, hint: '500,000 quota units = 1 USD.' },
  ];
  await crudPage(container, {
    title: 'Users', noun: 'user', endpoint: '/api/user/', nameOf: (u) => u.username, fields,
    toBody: (body) => {
      if (!body.password) delete body.password;
      return body;
    },
    columns: [
      { label: 'ID', class: 'num', render: (u) => String(u.id) },
      { label: 'Username', render: (u) => h('span', {}, h('strong', { text: u.username }), u.display_name && u.display_name !== u.username ? ` (${u.display_name})` : '') },
      { label: 'Role', render: (u) => ROLES[u.role] || String(u.role) },
      { label: 'Group', render: (u) => u.group },
      { label: 'Status', render: (u) => statusBadge(u.status, USER_STATUS) },
      { label: 'Balance', class: 'num', render: (u) => money(u.quota) },
      { label: 'Used', class: 'num', render: (u) => money(u.used_quota) },
      { label: 'Requests', class: 'num', render: (u) => number(u.request_count) },
    ],
    rowActions: (user, reload) => [
      button('Top up', () => topUp(user, reload), { dataset: { action: 'topup' }, 'aria-label': `Top up ${user.username}` }),
      user.role < 100 ? button(user.status === 1 ? 'Disable' : 'Enable', async () => {
        try {
          await api.put('/api/user/', { id: user.id, status: user.status === 1 ? 2 : 1 });
          toast(`${user.username} is now ${user.status === 1 ? 'disabled' : 'enabled'}`);
          await reload();
        } catch (error) {
          toast(error.message);
        }
      }, { dataset: { action: user.status === 1 ? 'disable' : 'enable' }, 'aria-label': `${user.status === 1 ? 'Disable' : 'Enable'} ${user.username}` }) : '',
    ],
    canDelete: true,
    canDeleteItem: (u) => u.id !== me.id && u.role < (me.role || 0),
  });
}

function topUp(user, reload) {
  const amount = h('input', { type: 'number', name: 'amount', step: 'any', inputmode: 'decimal', required: true });
  const error = formError();
  const form = h('form', { class: 'form', id: 'topup-form', novalidate: true },
    h('p', {}, `Current balance of ${user.username}: `, money(user.quota, { beside: true })),
    field('Amount to add (USD)', amount, 'A negative amount takes credit away.'),
    error.element,
    h('div', { class: 'form-actions' }, button('Cancel', () => dialog.close()), h('button', { type: 'submit', class: 'btn btn-primary', text: 'Top up' })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    const add = usdToQuota(amount.value);
    if (!Number.isFinite(add) || add === 0) return error.show('Enter an amount in USD.');
    try {
      const fresh = await api.get(`/api/user/${user.id}`);
      await api.put('/api/user/', { id: user.id, quota: fresh.quota + add });
      dialog.close();
      toast(`Balance of ${user.username} updated`);
      await reload();
    } catch (failure) {
      error.show(failure.message);
    }
  });
  const dialog = openDialog(`Top up ${user.username}`, form);
}
