// API Tokens: the list of the user's keys, Create Key / Edit dialogs, Copy, Disable/Enable, Delete,
// and the request example (examples.js).
import * as api from '../api.js';
import {
  h, field, checkbox, formError, money, expiry, statusBadge, pageHeader, button, table, pager, notice,
  toast, openDialog, confirmDialog, copyText, copyBox, usdToQuota, QUOTA_PER_USD, uid,
  localInputToSeconds, secondsToLocalInput,
} from '../ui.js';
import { openExamples } from './examples.js';

const PAGE_SIZE = 20;

export async function render(container, ctx) {
  const state = { page: 1, keyword: '' };
  const list = h('div', { class: 'token-list' });
  const keyword = h('input', { type: 'search', name: 'keyword', autocomplete: 'off' });
  const search = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search keys', id: 'token-search' },
    field('Search by name', keyword), h('button', { type: 'submit', class: 'btn btn-secondary', text: 'Search' }));
  search.addEventListener('submit', (event) => {
    event.preventDefault();
    state.keyword = keyword.value.trim();
    state.page = 1;
    reload();
  });
  container.append(
    pageHeader('API Tokens', button('Create Key', () => openTokenForm(ctx, null, reload), { kind: 'primary', id: 'create-key' })),
    h('p', { class: 'muted lead', text: 'Keys starting with sk- call the gateway’s OpenAI- and Anthropic-compatible APIs. Keep them secret; create one per project.' }),
    search,
    list);

  async function reload() {
    list.replaceChildren(notice('Loading keys…'));
    try {
      const path = state.keyword ? '/api/token/search' : '/api/token/';
      const data = api.pageOf(await api.get(`${path}${api.query({ keyword: state.keyword, p: state.page, size: PAGE_SIZE })}`));
      if (!data.items.length && state.page > 1) {
        state.page -= 1;
        return reload();
      }
      list.replaceChildren(tokenTable(ctx, data.items, reload),
        data.total > PAGE_SIZE ? pager(state.page, PAGE_SIZE, data.total, (p) => { state.page = p; reload(); }) : '');
    } catch (error) {
      list.replaceChildren(notice(error.message, 'error'));
    }
  }
  await reload();
}

function tokenTable(ctx, tokens, reload) {
  return table([
    { label: 'Name', render: (t) => h('span', { class: 'token-name', text: t.name }) },
    { label: 'Status', render: (t) => statusBadge(t.status) },
    { label: 'Used', class: 'num', render: (t) => money(t.used_quota) },
    { label: 'Remaining', class: 'num', render: (t) => (t.unlimited_quota ? h('span', { text: 'Unlimited' }) : money(t.remain_quota)) },
    { label: 'Expires', render: (t) => expiry(t.expired_time) },
    { label: 'Group', render: (t) => groupLabel(t, ctx.session.user) },
    { label: 'Actions', class: 'row-actions', render: (t) => rowActions(ctx, t, reload) },
  ], tokens, { caption: 'Your API keys', empty: 'No keys yet. Create one with “Create Key”.', rowAttrs: (t) => ({ dataset: { tokenId: t.id, tokenName: t.name } }) });
}

function groupLabel(token, user) {
  const groups = [token.group || (user && user.group) || 'default', ...(token.fallback_groups || [])];
  return h('span', { class: 'group-chain', text: groups.join(' → ') });
}

function rowActions(ctx, token, reload) {
  const enabled = token.status === 1;
  return h('div', { class: 'btn-row' },
    button('Copy', () => copyKey(token), { dataset: { action: 'copy' }, 'aria-label': `Copy the key of ${token.name}` }),
    button('Example', () => openExamples(token), { dataset: { action: 'example' }, 'aria-label': `Request example for ${token.name}` }),
    h('a', { class: 'btn btn-secondary', href: `#/tokens/${token.id}`, dataset: { action: 'logs' }, 'aria-label': `Usage and logs of ${token.name}`, text: 'Logs' }),
    button('Edit', () => openTokenForm(ctx, token, reload), { dataset: { action: 'edit' }, 'aria-label': `Edit ${token.name}` }),
    button(enabled ? 'Disable' : 'Enable', () => setStatus(token, enabled ? 2 : 1, reload),
      { dataset: { action: enabled ? 'disable' : 'enable' }, 'aria-label': `${enabled ? 'Disable' : 'Enable'} ${token.name}` }),
    button('Delete', () => removeToken(token, reload), { kind: 'danger-ghost', dataset: { action: 'delete' }, 'aria-label': `Delete ${token.name}` }));
}

async function copyKey(token) {
  try {
    const data = await api.post(`/api/token/${token.id}/key`);
    const ok = await copyText(data.key);
    if (ok) toast(`The key of ${token.name} was copied to the clipboard`);
    else openDialog(`Key of ${token.name}`, copyBox(data.key, 'API key'));
  } catch (error) {
    toast(error.message);
  }
}

async function setStatus(token, status, reload) {
  try {
    await api.put('/api/token/?status_only=true', { id: token.id, status });
    toast(`${token.name} is now ${status === 1 ? 'enabled' : 'disabled'}`);
    await reload();
  } catch (error) {
    toast(error.message);
  }
}

async function removeToken(token, reload) {
  const yes = await confirmDialog('Delete key', `Delete the key “${token.name}”? Programs using it stop working at once. This cannot be undone.`, 'Delete');
  if (!yes) return;
  try {
    await api.del(`/api/token/${token.id}`);
    toast(`${token.name} was deleted`);
    await reload();
  } catch (error) {
    toast(error.message);
  }
}

// ---------- models the chosen groups allow ----------

let everyModelCache = null;
/** Every model the gateway prices: /api/pricing (public) or, for admins, /api/model/. */
async function everyModel() {
  if (everyModelCache) return everyModelCache;
  const names = new Set();
  try {
    const data = await api.get('/api/pricing');
    for (const item of api.pageOf(data).items) names.add(item.model);
  } catch {
    try {
      const data = await api.get('/api/model/?p=1&size=100');
      for (const item of api.pageOf(data).items) names.add(item.model);
    } catch {
      // neither is available: the picker offers free text only
    }
  }
  names.delete(undefined);
  everyModelCache = [...names].sort();
  return everyModelCache;
}

/** Models allowed by the union of the chosen groups; `null` group models means every model. */
async function modelsFor(groups, chosen) {
  const names = new Set();
  let every = false;
  for (const name of chosen) {
    const group = groups.find((g) => g.name === name);
    if (!group) continue;
    if (!group.models || group.models.length === 0) every = true;
    else group.models.forEach((m) => names.add(m));
  }
  if (every) (await everyModel()).forEach((m) => names.add(m));
  return { models: [...names].sort(), every };
}

// ---------- create / edit ----------

export async function openTokenForm(ctx, token, reload) {
  let groups = [];
  try {
    groups = await api.get('/api/user/self/groups');
  } catch (error) {
    toast(error.message);
  }
  const user = ctx.session.user || {};
  const editing = Boolean(token);
  const error = formError();

  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '30', value: token ? token.name : '', autocomplete: 'off' });

  const groupOptions = (selected, noneLabel) => [
    h('option', { value: '', text: noneLabel, selected: !selected }),
    ...groups.map((g) => h('option', { value: g.name, selected: g.name === selected, text: `${g.name} (×${g.ratio})` })),
  ];
  const group = h('select', { name: 'group' }, groupOptions(token ? token.group : '', `Account group (${user.group || 'default'})`));
  const fallbacks = token ? token.fallback_groups || [] : [];
  const fallback1 = h('select', { name: 'fallback1' }, groupOptions(fallbacks[0] || '', 'None'));
  const fallback2 = h('select', { name: 'fallback2' }, groupOptions(fallbacks[1] || '', 'None'));

  const never = checkbox('Never expires', { name: 'never', checked: !token || token.expired_time === -1 });
  const expires = h('input', { type: 'datetime-local', name: 'expires' });
  expires.value = token && token.expired_time > 0 ? secondsToLocalInput(token.expired_time) : secondsToLocalInput(Math.floor(Date.now() / 1000) + 30 * 86400);
  const syncExpiry = () => { expires.disabled = never.input.checked; };
  never.input.addEventListener('change', syncExpiry);
  syncExpiry();

  const unlimited = checkbox('Unlimited credit', { name: 'unlimited', checked: !token || token.unlimited_quota });
  const limit = h('input', { type: 'number', name: 'limit', min: '0', step: '0.01', inputmode: 'decimal' });
  limit.value = token ? String(token.remain_quota / QUOTA_PER_USD) : '10';
  const syncLimit = () => { limit.disabled = unlimited.input.checked; };
  unlimited.input.addEventListener('change', syncLimit);
  syncLimit();

  // Available models: a checklist over what the chosen groups allow, a filter, and free text for others.
  const selectedModels = new Set(token && token.model_limits_enabled && token.model_limits ? token.model_limits.split(',').map((m) => m.trim()).filter(Boolean) : []);
  const modelFilter = h('input', { type: 'search', name: 'model-filter', placeholder: 'Filter models', autocomplete: 'off' });
  const modelList = h('div', { class: 'model-list', role: 'group', 'aria-label': 'Models of the chosen groups' });
  const otherModels = h('input', { type: 'text', name: 'other-models', autocomplete: 'off', spellcheck: 'false' });
  const modelSummary = h('p', { class: 'hint', 'aria-live': 'polite' });
  let offered = [];
  const chosenGroups = () => [group.value || user.group || 'default', fallback1.value, fallback2.value].filter(Boolean);
  async function refreshModels() {
    for (const box of modelList.querySelectorAll('input:checked')) selectedModels.add(box.value);
    for (const box of modelList.querySelectorAll('input:not(:checked)')) selectedModels.delete(box.value);
    const { models, every } = await modelsFor(groups, chosenGroups());
    offered = models;
    modelList.replaceChildren(...models.map((model) => {
      const item = checkbox(model, { name: 'model', value: model, checked: selectedModels.has(model) });
      item.element.dataset.model = model;
      return item.element;
    }));
    if (!models.length) modelList.append(h('p', { class: 'hint', text: every ? 'These groups allow every model; type model names below to restrict the key.' : 'No models listed for these groups.' }));
    const extra = [...selectedModels].filter((m) => !offered.includes(m));
    otherModels.value = extra.join(', ');
    modelSummary.textContent = every
      ? 'The chosen groups allow every model. Leave all unchecked to allow them all.'
      : 'Leave all unchecked to allow every model the chosen groups allow.';
    applyFilter();
  }
  function applyFilter() {
    const text = modelFilter.value.trim().toLowerCase();
    for (const item of modelList.querySelectorAll('.check')) item.hidden = Boolean(text) && !item.dataset.model.toLowerCase().includes(text);
  }
  modelFilter.addEventListener('input', applyFilter);
  for (const select of [group, fallback1, fallback2]) select.addEventListener('change', refreshModels);

  const ips = h('textarea', { name: 'allow_ips', rows: '2', spellcheck: 'false', placeholder: '203.0.113.7\n10.0.0.0/8' });
  ips.value = token ? token.allow_ips || '' : '';

  const mode = token ? token.billing_mode || 'usage' : 'usage';
  const usageRadio = h('input', { type: 'radio', name: 'billing_mode', value: 'usage', id: uid('mode'), checked: mode === 'usage' });
  const perCallRadio = h('input', { type: 'radio', name: 'billing_mode', value: 'per_call', id: uid('mode'), checked: mode === 'per_call' });

  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: editing ? 'Save' : 'Submit' });
  const form = h('form', { class: 'form token-form', id: 'token-form', novalidate: true },
    field('Name', name, 'For example my-project. At most 30 characters.'),
    h('fieldset', { class: 'fieldset' }, h('legend', { text: 'Groups' }),
      field('Group', group, 'The pricing group: its multiplier and the models it allows.'),
      h('div', { class: 'field-pair' }, field('Fallback group 1', fallback1), field('Fallback group 2', fallback2)),
      h('p', { class: 'hint', text: 'Fallback groups are tried in order when the group cannot serve a request.' })),
    h('div', { class: 'field-pair' },
      h('fieldset', { class: 'fieldset' }, h('legend', { text: 'Expiry' }), never.element, field('Expires at', expires)),
      h('fieldset', { class: 'fieldset' }, h('legend', { text: 'Credit limit' }), unlimited.element,
        field(editing ? 'Remaining credit (USD)' : 'Credit limit (USD)', limit))),
    h('fieldset', { class: 'fieldset' }, h('legend', { text: 'Available models' }),
      modelSummary, field('Filter models', modelFilter), modelList,
      field('Other models', otherModels, 'Comma-separated model names not in the list.')),
    field('IP whitelist', ips, 'One address or CIDR range per line (IPv4 or IPv6). Empty allows any address.'),
    h('fieldset', { class: 'fieldset' }, h('legend', { text: 'Billing mode' }),
      h('div', { class: 'radio-row' },
        h('div', { class: 'check' }, usageRadio, h('label', { for: usageRadio.id, text: 'By usage (tokens)' })),
        h('div', { class: 'check' }, perCallRadio, h('label', { for: perCallRadio.id, text: 'Per call (fixed price)' })))),
    error.element,
    h('div', { class: 'form-actions' }, button('Cancel', () => dialog.close()), submit));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    const body = collect();
    if (!body) return;
    submit.disabled = true;
    try {
      if (editing) {
        await api.put('/api/token/', { id: token.id, ...body });
        dialog.close();
        toast(`${body.name} was saved`);
      } else {
        const created = await api.post('/api/token/', body);
        const fresh = Array.isArray(created) ? created[0] : created;
        showNewKey(dialog, form, fresh);
      }
      await reload();
    } catch (failure) {
      error.show(failure.message);
      submit.disabled = false;
    }
  });

  function collect() {
    const body = { name: name.value.trim() };
    if (!body.name) { error.show('Enter a name for the key.'); name.focus(); return null; }
    if (body.name.length > 30) { error.show('Token name is too long (30 characters at most).'); name.focus(); return null; }
    body.group = group.value;
    body.fallback_groups = [fallback1.value, fallback2.value].filter(Boolean);
    if (never.input.checked) body.expired_time = -1;
    else {
      body.expired_time = localInputToSeconds(expires.value);
      if (!Number.isFinite(body.expired_time)) { error.show('Choose an expiry date, or tick “Never expires”.'); expires.focus(); return null; }
    }
    body.unlimited_quota = unlimited.input.checked;
    if (!body.unlimited_quota) {
      body.remain_quota = usdToQuota(limit.value);
      if (!Number.isFinite(body.remain_quota) || body.remain_quota < 0) { error.show('The credit limit must be a positive amount in USD.'); limit.focus(); return null; }
    }
    const picked = [...modelList.querySelectorAll('input:checked')].map((box) => box.value);
    const typed = otherModels.value.split(/[,\n]/).map((m) => m.trim()).filter(Boolean);
    const models = [...new Set([...picked, ...typed])];
    body.model_limits_enabled = models.length > 0;
    body.model_limits = models.join(',');
    body.allow_ips = ips.value.split(/[,\n]/).map((ip) => ip.trim()).filter(Boolean).join(',');
    body.billing_mode = perCallRadio.checked ? 'per_call' : 'usage';
    return body;
  }

  const dialog = openDialog(editing ? `Edit key ${token.name}` : 'Create Key', form, { wide: true });
  name.focus();
  await refreshModels();
}

/** After creation: the new sk- key, shown once in full, with Copy. */
function showNewKey(dialog, form, token) {
  const done = h('button', { type: 'button', class: 'btn btn-primary', text: 'Done', onclick: () => dialog.close() });
  const box = copyBox(token.key, 'API key');
  box.querySelector('input').id = 'new-key';
  const result = h('div', { class: 'new-key', id: 'new-key-result' },
    h('p', { role: 'status', text: `The key “${token.name}” was created. Copy it now and keep it safe.` }),
    box,
    h('div', { class: 'form-actions' },
      button('Request example', () => { dialog.close(); openExamples(token); }, { id: 'new-key-example' }),
      done));
  form.replaceWith(result);
  dialog.querySelector('h2').textContent = 'Your new key';
  box.querySelector('button').focus();
}
