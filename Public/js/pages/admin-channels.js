// Admin: upstream channels, with a Test button and their health.
import * as api from '../api.js';
import { h, statusBadge, button, toast, dateTime } from '../ui.js';
import { crudPage } from './crud.js';

const CHANNEL_STATUS = { 1: 'Enabled', 2: 'Disabled', 3: 'Auto-disabled' };

/** Health as the channel reports it: the last test's response time and when it ran, if known. */
function health(channel) {
  const ms = channel.response_time ?? channel.response_time_ms ?? channel.last_test_ms;
  const at = channel.test_time ?? channel.tested_at ?? channel.last_test_time;
  const text = ms !== undefined && ms !== null && (ms > 0 || at) ? `${ms} ms${at ? ` · ${dateTime(at)}` : ''}` : 'Not tested';
  return h('span', { class: 'health', dataset: { health: channel.id }, text });
}

export async function render(container) {
  await crudPage(container, {
    title: 'Channels', noun: 'channel', endpoint: '/api/channel/',
    intro: 'Channels are the upstream providers. Keys route to the channels of their group by priority, then weight.',
    fields: (() => [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', options: [['openai', 'OpenAI-compatible'], ['anthropic', 'Anthropic']], default: 'openai' },
      { name: 'base_url', label: 'Base URL', type: 'url', hint: 'The provider’s address without /v1, e.g. https://api.openai.com.' },
      { name: 'key', label: 'Provider key', type: 'password', hint: 'When editing, leave empty to keep the stored key.' },
      { name: 'models', label: 'Models', type: 'list', hint: 'Comma-separated model names this channel serves.' },
      { name: 'model_mapping', label: 'Model mapping (JSON)', type: 'json', rows: 3, hint: '{"requested-model": "upstream-model"}' },
      { name: 'groups', label: 'Groups', type: 'list', default: ['default'], hint: 'Comma-separated groups served by this channel.' },
      { name: 'priority', label: 'Priority', type: 'number', default: 0, hint: 'Higher first.' },
      { name: 'weight', label: 'Weight', type: 'number', min: 0, default: 1, hint: 'Share among channels of the same priority.' },
      { name: 'status', label: 'Status', type: 'select', numeric: true, options: [[1, 'Enabled'], [2, 'Disabled']], default: 1 },
    ]),
    toBody: (body, item) => {
      if (item && !body.key) delete body.key;
      return body;
    },
    columns: [
      { label: 'Name', render: (c) => h('strong', { text: c.name }) },
      { label: 'Type', render: (c) => c.type },
      { label: 'Base URL', render: (c) => h('code', { text: c.base_url || '—' }) },
      { label: 'Models', render: (c) => (c.models || []).join(', ') || '—' },
      { label: 'Groups', render: (c) => (c.groups || []).join(', ') || '—' },
      { label: 'Priority', class: 'num', render: (c) => String(c.priority ?? 0) },
      { label: 'Status', render: (c) => statusBadge(c.status, CHANNEL_STATUS) },
      { label: 'Health', render: health },
    ],
    rowActions: (channel) => [
      button('Test', async (event) => {
        const target = event.currentTarget;
        const cell = target.closest('tr').querySelector('.health');
        target.disabled = true;
        cell.textContent = 'Testing…';
        try {
          const data = await api.post(`/api/channel/${channel.id}/test`);
          const ms = data && (data.time_ms ?? data.response_time ?? data.response_time_ms ?? (data.time !== undefined ? Math.round(data.time * 1000) : undefined));
          cell.textContent = ms !== undefined ? `OK · ${ms} ms` : 'OK';
          cell.className = 'health health-ok';
          toast(`Channel ${channel.name} answered`);
        } catch (error) {
          cell.textContent = `Failed: ${error.message}`;
          cell.className = 'health health-bad';
          toast(`Channel ${channel.name} failed its test`);
        }
        target.disabled = false;
      }, { dataset: { action: 'test' }, 'aria-label': `Test ${channel.name}` }),
    ],
  });
}
