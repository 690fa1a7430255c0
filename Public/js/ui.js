// Small DOM helpers for the Sluice console. Everything is built with DOM APIs (no innerHTML),
// and styled with classes only, so the console works under a strict Content-Security-Policy.

const SVG_NS = 'http://www.w3.org/2000/svg';
export const QUOTA_PER_USD = 500000;

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` handlers, `dataset`, booleans
 * (true sets the attribute, false/null/undefined omits it) and plain attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  applyAttributes(element, attrs);
  append(element, children);
  return element;
}

/** Creates an SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  applyAttributes(element, attrs);
  append(element, children);
  return element;
}

function applyAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') element.textContent = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'value' && 'value' in element && !(element instanceof SVGElement)) element.value = value;
    else if (name === 'checked' || name === 'selected') element[name] = Boolean(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let idCounter = 0;
/** A unique element id with a readable prefix. */
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field: `control` gets an id and the label points at it. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid('field');
  const children = [h('label', { for: control.id, text: label }), control];
  if (hint) {
    const hintId = uid('hint');
    control.setAttribute('aria-describedby', hintId);
    children.push(h('p', { class: 'hint', id: hintId, text: hint }));
  }
  return h('div', { class: 'field' }, children);
}

/** A checkbox with its label beside it. */
export function checkbox(label, attrs = {}) {
  const input = h('input', { type: 'checkbox', id: uid('check'), ...attrs });
  return { input, element: h('div', { class: 'check' }, input, h('label', { for: input.id, text: label })) };
}

/** The error line of a form: shows the envelope's `message` next to the form. */
export function formError() {
  const element = h('p', { class: 'form-error', role: 'alert', hidden: true });
  return {
    element,
    show(message) {
      element.textContent = message;
      element.hidden = false;
    },
    clear() {
      element.textContent = '';
      element.hidden = true;
    },
  };
}

// ---------- formatting ----------

/** Quota units as USD text: 500000 units = $1. */
export function usdText(quota) {
  const usd = Number(quota || 0) / QUOTA_PER_USD;
  if (usd !== 0 && Math.abs(usd) < 0.01) return `$${usd.toFixed(6).replace(/0+$/, '')}`;
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** Quota as USD, with the units on hover and for assistive technology. */
export function money(quota, { beside = false } = {}) {
  const units = `${Number(quota || 0).toLocaleString('en-US')} units`;
  const element = h('span', { class: 'money', title: units }, usdText(quota));
  if (beside) element.append(' ', h('span', { class: 'units', text: `(${units})` }));
  return element;
}

export function dateTime(seconds) {
  if (!seconds || seconds <= 0) return '—';
  const date = new Date(seconds * 1000);
  return `${date.toLocaleDateString('en-CA')} ${date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}`;
}

export function expiry(seconds) {
  return seconds === -1 || seconds === undefined || seconds === null ? 'Never' : dateTime(seconds);
}

export const TOKEN_STATUS = { 1: 'Enabled', 2: 'Disabled', 3: 'Expired', 4: 'Exhausted' };

export function statusBadge(status, names = TOKEN_STATUS) {
  const tone = status === 1 ? 'ok' : status === 2 ? 'muted' : 'warn';
  return h('span', { class: `badge badge-${tone}`, text: names[status] || `Status ${status}` });
}

export function number(value) {
  return Number(value || 0).toLocaleString('en-US');
}

/** USD text typed by a person to quota units (rounded). */
export function usdToQuota(text) {
  const value = Number.parseFloat(String(text).trim());
  if (!Number.isFinite(value)) return NaN;
  return Math.round(value * QUOTA_PER_USD);
}

// ---------- page pieces ----------

/** The page heading; focused after navigation so screen readers announce the new page. */
export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' },
    h('h1', { tabindex: '-1', id: 'page-title', text: title }),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

export function button(label, onclick, { kind = 'secondary', ...attrs } = {}) {
  return h('button', { type: 'button', class: `btn btn-${kind}`, onclick, ...attrs }, label);
}

/**
 * A responsive table. `columns`: [{label, render(row) -> node|string, class}].
 * At phone width every row becomes a card, each cell labelled by its column (data-label).
 */
export function table(columns, rows, { caption, empty = 'Nothing here yet.', rowAttrs } = {}) {
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label }))));
  const body = h('tbody');
  if (!rows.length) {
    body.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty', text: empty })));
  }
  for (const row of rows) {
    body.append(h('tr', rowAttrs ? rowAttrs(row) : {}, columns.map((c) =>
      h('td', { 'data-label': c.label, class: c.class }, c.render(row)))));
  }
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data-table' }, caption ? h('caption', { class: 'visually-hidden', text: caption }) : null, head, body));
}

/** Previous / next pager. */
export function pager(page, size, total, onPage) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    button('Previous', () => onPage(page - 1), { disabled: page <= 1 }),
    h('span', { class: 'pager-info', text: `Page ${page} of ${pages} · ${number(total)} in all` }),
    button('Next', () => onPage(page + 1), { disabled: page >= pages }));
}

/** Notice line (loading, errors of a page). */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null, text });
}

// ---------- toast, dialogs, clipboard ----------

let toastTimer = 0;
export function toast(message) {
  const element = document.getElementById('toast');
  element.textContent = message;
  element.classList.add('toast-visible');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => element.classList.remove('toast-visible'), 4000);
}

/**
 * Opens a modal <dialog>. `content` is a node (usually a form). Focus moves into the dialog
 * (to the first field, or the element with `autofocus`) and returns to the opener on close.
 */
export function openDialog(title, content, { wide = false, onClose } = {}) {
  const opener = document.activeElement;
  const titleId = uid('dialog-title');
  const closeButton = h('button', { type: 'button', class: 'btn btn-ghost dialog-close', 'aria-label': 'Close', text: '×' });
  const dialog = h('dialog', { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' }, h('h2', { id: titleId, text: title }), closeButton),
    h('div', { class: 'dialog-body' }, content));
  closeButton.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector('[autofocus]') ||
    dialog.querySelector('.dialog-body input:not([type=hidden]):not([disabled]), .dialog-body select, .dialog-body textarea, .dialog-body button');
  if (first) first.focus();
  return dialog;
}

/** Asks for confirmation; answers a promise of true/false. */
export function confirmDialog(title, message, confirmLabel = 'Confirm', kind = 'danger') {
  return new Promise((resolve) => {
    let answer = false;
    const form = h('form', { method: 'dialog', class: 'form' },
      h('p', { text: message }),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'btn btn-secondary', value: 'cancel', autofocus: true, text: 'Cancel' }),
        h('button', { type: 'submit', class: `btn btn-${kind}`, value: 'confirm', text: confirmLabel,
          onclick: () => { answer = true; } })));
    openDialog(title, form, { onClose: () => resolve(answer) });
  });
}

/** Copies text; falls back to a selected textarea and execCommand where the Clipboard API is refused. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the fallback
  }
  const area = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  area.value = text;
  (document.querySelector('dialog[open]') || document.body).append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A read-only text box with a Copy button (used for keys and code). */
export function copyBox(value, label, { multiline = false } = {}) {
  const control = multiline
    ? h('textarea', { readonly: true, rows: Math.min(14, value.split('\n').length + 1), class: 'code', spellcheck: 'false' })
    : h('input', { type: 'text', readonly: true, class: 'code', spellcheck: 'false' });
  control.value = value;
  control.id = uid('copy');
  const copy = button('Copy', async () => {
    const ok = await copyText(control.value);
    toast(ok ? `${label} copied to the clipboard` : 'Copy failed: select the text and copy it by hand');
    if (!ok) control.select();
  }, { kind: 'secondary', 'aria-label': `Copy ${label.toLowerCase()}` });
  return h('div', { class: 'field copy-box' },
    h('label', { for: control.id, text: label }),
    h('div', { class: multiline ? 'copy-row copy-row-multi' : 'copy-row' }, control, copy));
}

/** Downloads text as a file (CSV export). */
export function download(filename, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h('a', { href: url, download: filename, class: 'offscreen' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** CSV text of rows with RFC 4180 quoting. */
export function toCSV(header, rows) {
  const cell = (value) => {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** Seconds since the epoch for a datetime-local value. */
export function localInputToSeconds(value) {
  const time = new Date(value).getTime();
  return Number.isFinite(time) ? Math.floor(time / 1000) : NaN;
}

/** A datetime-local value for unix seconds. */
export function secondsToLocalInput(seconds) {
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
