// Admin: models and their prices (USD per 1M tokens, or per call for per_call keys).
// `/api/model/` rows: {id, model, input_price, output_price, call_price (null: no per-call price), max_output_tokens}.
import { h } from '../ui.js';
import { crudPage } from './crud.js';

const price = (value) => (value === undefined || value === null ? '—' : `$${Number(value)}`);

export async function render(container) {
  await crudPage(container, {
    title: 'Models and prices', noun: 'model', endpoint: '/api/model/', pageSize: 50,
    idOf: (m) => m.id, nameOf: (m) => m.model,
    intro: 'Prices are in USD: input and output per 1M tokens for keys billed by usage, and a price per call for per-call keys. The group multiplier applies on top. Sluice refuses a model with no price.',
    fields: [
      { name: 'model', label: 'Model', required: true, readonlyOnEdit: true },
      { name: 'input_price', label: 'Input price (USD per 1M tokens)', type: 'float', min: 0, default: 0 },
      { name: 'output_price', label: 'Output price (USD per 1M tokens)', type: 'float', min: 0, default: 0 },
      { name: 'call_price', label: 'Price per call (USD)', type: 'float', min: 0, nullable: true, hint: 'Empty: no per-call price (per-call keys cannot use the model).' },
      { name: 'max_output_tokens', label: 'Max output tokens', type: 'number', min: 1, default: 4096, hint: 'Held for a call that gives no max_tokens.' },
    ],
    columns: [
      { label: 'Model', render: (m) => h('code', { text: m.model }) },
      { label: 'Input / 1M', class: 'num', render: (m) => price(m.input_price) },
      { label: 'Output / 1M', class: 'num', render: (m) => price(m.output_price) },
      { label: 'Per call', class: 'num', render: (m) => price(m.call_price) },
      { label: 'Max output', class: 'num', render: (m) => (m.max_output_tokens ? String(m.max_output_tokens) : '—') },
    ],
  });
}
