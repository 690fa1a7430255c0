// A generic admin collection page: list with pages, create/edit dialog, delete with confirmation.
// Collections answer `{items, total, page, page_size}` (GET ?p=&size=), POST / creates, PUT / updates with id,
// DELETE /:id removes.
import * as api from '../api.js';
import {
  h, field, checkbox, formError, pageHeader, button, table, pager, notice, toast, openDialog, confirmDialog,
  usdToQuota, QUOTA_PER_USD,
} from '../ui.js';
import { unavailable } from './logs.js';

/** A form control for a field definition, filled from `item`. Answers {element, read()}. */
export function control(def, item) {
  const value = item ? (def.noPrefill ? undefined : item[def.name]) : def.default;
  if (def.type === 'checkbox') {
    const box = checkbox(def.label, { name: def.name, checked: value === undefined ? Boolean(def.default) : Boolean(value) });
    return { element: box.element, read: () => box.input.checked };
  }
  let input;
  if (def.type === 'select') {
    input = h('select', { name: def.name }, (def.options || []).map(([v, label]) => h('option', { value: String(v), text: label, selected: String(v) === String(value ?? '') })));
  } else if (def.type === 'textarea' || def.type === 'json' || def.type === 'list') {
    input = h('textarea', { name: def.name, rows: def.rows || '2', spellcheck: 'false' });
    if (def.type === 'json') input.value = value && Object.keys(value).length ? JSON.stringify(value, null, 2) : '';
    else if (def.type === 'list') input.value = Array.isArray(value) ? value.join(', ') : value || '';
    else input.value = value ?? '';
  } else {
    const numeric = ['number', 'float', 'usd'].includes(def.type);
    input = h('input', { type: numeric ? 'number' : def.type || 'text', name: def.name, autocomplete: 'off',
      step: def.type === 'number' ? '1' : 'any', min: numeric && def.min !== undefined ? String(def.min) : null, inputmode: numeric ? 'decimal' : null });
    input.value = value === undefined || value === null ? '' : def.type === 'usd' ? String(Number(value) / QUOTA_PER_USD) : String(value);
  }
  if (def.required || (def.requiredOnCreate && !item)) input.required = true;
  if (item && def.readonlyOnEdit) input.readOnly = true;
  return {
    element: field(def.label, input, def.hint),
    read() {
      const text = input.value.trim();
      switch (def.type) {
        case 'number': return text === '' ? undefined : Number.parseInt(text, 10);
        case 'float': return text === '' ? (def.nullable ? null : undefined) : Number.parseFloat(text);
        case 'usd': return text === '' ? undefined : usdToQuota(text);
        case 'list': return text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
        case 'json':
          if (!text) return {};
          try { return JSON.parse(text); } catch { throw new Error(`${def.label}: not valid JSON`); }
        case 'select': return def.numeric ? Number(input.value) : input.value;
        default: return text;
      }
    },
  };
}

/** Opens a form dialog for `fields`; `submit(body)` saves. */
export function formDialog(title, fields, item, submit, { submitLabel = 'Save', after } = {}) {
  const error = formError();
  const controls = fields.filter((f) => !f.hidden || !f.hidden(item)).map((def) => [def, control(def, item)]);
  const save = h('button', { type: 'submit', class: 'btn btn-primary', text: submitLabel });
  const form = h('form', { class: 'form', novalidate: true, id: 'crud-form' },
    controls.map(([, c]) => c.element), error.element,
    h('div', { class: 'form-actions' }, button('Cancel', () => dialog.close()), save));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.clear();
    const body = {};
    try {
      for (const [def, c] of controls) {
        if (item && def.readonlyOnEdit) continue;
        const value = c.read();
        const required = def.required || (def.requiredOnCreate && !item);
        if (required && (value === undefined || value === '')) throw new Error(`${def.label} is required.`);
        if (value !== undefined) body[def.name] = value;
      }
    } catch (failure) {
      error.show(failure.message);
      return;
    }
    save.disabled = true;
    try {
      const result = await submit(body);
      if (after) after(result, dialog, form);
      else dialog.close();
    } catch (failure) {
      error.show(failure.message);
      save.disabled = false;
    }
  });
  const dialog = openDialog(title, form, { wide: fields.length > 6 });
  return dialog;
}

/** The collection page. */
export async function crudPage(container, config) {
  const { title, endpoint, columns, fields, noun, idOf = (item) => item.id, nameOf = (item) => item.name } = config;
  // how a row is named to people (dialogs, button labels); nameOf also keys the row (data-name)
  const labelOf = config.labelOf || nameOf;
  const state = { page: 1, size: config.pageSize || 20 };
  const list = h('div', { class: 'crud-list' });
  const headerActions = [];
  if (fields && config.canCreate !== false) {
    headerActions.push(button(config.createLabel || `Add ${noun}`, () => (config.onCreate ? config.onCreate(reload) : openEditor(null)), { kind: 'primary', id: 'crud-create' }));
  }
  if (config.headerActions) headerActions.push(...config.headerActions(() => state.items || []));
  container.append(pageHeader(title, ...headerActions), config.intro ? h('p', { class: 'muted lead', text: config.intro }) : '', list);

  function openEditor(item) {
    const editFields = typeof fields === 'function' ? fields() : fields;
    formDialog(item ? `Edit ${noun} ${nameOf(item)}` : `Add ${noun}`, editFields, item, async (body) => {
      const payload = config.toBody ? config.toBody(body, item) : body;
      const saved = item ? await api.put(endpoint, { id: idOf(item), ...payload }) : await api.post(endpoint, payload);
      toast(item ? `${noun} ${nameOf(item)} saved` : `${noun} created`);
      await reload();
      return saved;
    });
  }

  async function remove(item) {
    const yes = await confirmDialog(`Delete ${noun}`, `Delete ${noun} “${labelOf(item)}”? This cannot be undone.`, 'Delete');
    if (!yes) return;
    try {
      await api.del(`${endpoint}${encodeURIComponent(idOf(item))}`);
      toast(`${noun} ${labelOf(item)} deleted`);
      await reload();
    } catch (error) {
      toast(error.message);
    }
  }

  async function reload(resetPage) {
    if (resetPage === true) state.page = 1;
    list.replaceChildren(notice(`Loading…`));
    try {
      const data = api.pageOf(await api.get(`${endpoint}${api.query({ p: state.page, size: state.size, ...(config.query ? config.query() : {}) })}`));
      state.items = data.items;
      const allColumns = [...columns];
      if (fields || config.rowActions) {
        allColumns.push({ label: 'Actions', class: 'row-actions', render: (item) => h('div', { class: 'btn-row' },
          config.rowActions ? config.rowActions(item, reload) : [],
          fields && config.canEdit !== false ? button('Edit', () => openEditor(item), { dataset: { action: 'edit' }, 'aria-label': `Edit ${labelOf(item)}` }) : '',
          config.canDelete !== false && (!config.canDeleteItem || config.canDeleteItem(item)) ? button('Delete', () => remove(item), { kind: 'danger-ghost', dataset: { action: 'delete' }, 'aria-label': `Delete ${labelOf(item)}` }) : '') });
      }
      list.replaceChildren(table(allColumns, data.items, { caption: title, rowAttrs: (item) => ({ dataset: { id: idOf(item), name: nameOf(item) } }) }),
        pager(state.page, state.size, data.total, (p) => { state.page = p; reload(); }));
    } catch (error) {
      list.replaceChildren(notice(unavailable(error, title), 'error'));
    }
  }
  await reload();
  return { reload };
}
