// Admin: groups (pricing tiers) with multiplier, models, rate limits and whether users may choose them.
import { h, number } from '../ui.js';
import { crudPage } from './crud.js';

export async function render(container) {
  await crudPage(container, {
    title: 'Manage groups', noun: 'group', endpoint: '/api/group/',
    intro: 'Groups set the price multiplier and the models a key may call. Selectable groups are offered to every user.',
    fields: [
      { name: 'name', label: 'Name', required: true, readonlyOnEdit: true },
      { name: 'description', label: 'Description', type: 'textarea' },
      { name: 'ratio', label: 'Multiplier', type: 'float', min: 0, default: 1, hint: 'Multiplies the price of every call in this group.' },
      { name: 'models', label: 'Models', type: 'list', hint: 'Comma-separated; empty allows every model.' },
      { name: 'rpm', label: 'Requests per minute (RPM)', type: 'number', min: 0, default: 0, hint: '0 = unlimited.' },
      { name: 'tpm', label: 'Tokens per minute (TPM)', type: 'number', min: 0, default: 0, hint: '0 = unlimited.' },
      { name: 'selectable', label: 'Users may choose this group', type: 'checkbox', default: true },
    ],
    columns: [
      { label: 'Name', render: (g) => h('strong', { text: g.name }) },
      { label: 'Description', render: (g) => g.description || '—' },
      { label: 'Multiplier', class: 'num', render: (g) => `×${g.ratio}` },
      { label: 'Models', render: (g) => (g.models && g.models.length ? g.models.join(', ') : 'Every model') },
      { label: 'Limits', render: (g) => `${g.rpm ? number(g.rpm) : '∞'} RPM · ${g.tpm ? number(g.tpm) : '∞'} TPM` },
      { label: 'Selectable', render: (g) => (g.selectable ? 'Yes' : 'No') },
    ],
  });
}
