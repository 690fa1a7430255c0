// Admin: upstream channels, with a Test button and their health.
// A channel answers `health: {status: healthy|resting|probing, consecutive_failures, total_failures, total_successes,
// resting_until, last_error}`; `POST /api/channel/:id/test` answers `{ok, time_ms, model, message}` (a failed test
// is still HTTP 200 with ok: false).
import * as api from '../api.js';
import { h, statusBadge, button, toast, dateTime, number } from '../ui.js';
import { crudPage } from './crud.js';

const CHANNEL_STATUS = { 1: 'Enabled', 2: 'Disabled' };
const HEALTH = { healthy: ['Healthy', 'ok'], resting: ['Resting', 'warn'], probing: ['Probing', 'warn'] };

const clip = (text, length = 90) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

/** The health cell: state, counts since the last reset (an edit or a passing test clears them), the last error,
 * and the last test's answer once run. */
function health(channel) {
  const state = channel.health || {};
  const [label, tone] = HEALTH[state.status] || [state.status || 'Unknown', 'muted'];
  const details = [`${number(state.total_successes)} ok · ${number(state.total_failures)} failed`];
  if (state.consecutive_failures) details.push(`${number(state.consecutive_failures)} in a row`);
  if (state.status === 'resting' && state.resting_until) details.push(`resting until ${dateTime(state.resting_until)}`);
  return h('div', { class: 'health', dataset: { health: channel.id, status: state.status || '' } },
    h('span', { class: `badge badge-${tone}`, text: label }),
    h('span', { class: 'muted small', text: ` ${details.join(' · ')}` }),
    state.last_error ? h('p', { class: 'health-error small', title: state.last_error, text: `Last error: ${clip(state.last_error)}` }) : null,
    h('p', { class: 'test-result small', 'aria-live': 'polite' }));
}

export async function render(container) {
  await crudPage(container, {
    title: 'Channels', noun: 'channel', endpoint: '/api/channel/',
    intro: 'Channels are the upstream providers. Keys route to the channels of their group by priority, then weight; a channel that keeps failing rests for a while.',
    fields: (() => [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', options: [['openai', 'OpenAI-compatible'], ['anthropic', 'Anthropic']], default: 'openai' },
      { name: 'base_url', label: 'Base URL', type: 'url', required: true, hint: 'The provider’s address without /v1, e.g. https://api.openai.com.' },
      { name: 'key', label: 'Provider key', type: 'password', noPrefill: true, requiredOnCreate: true, hint: 'Stored and never shown again. When editing, leave empty to keep the stored key.' },
      { name: 'models', label: 'Models', type: 'list', hint: 'Comma-separated model names this channel serves.' },
      { name: 'model_mapping', label: 'Model mapping (JSON)', type: 'json', rows: 3, hint: '{"name callers use": "name the upstream gets"}' },
      { name: 'groups', label: 'Groups', type: 'list', default: ['default'], hint: 'Comma-separated groups served by this channel.' },
      { name: 'priority', label: 'Priority', type: 'number', default: 0, hint: 'Higher first.' },
      { name: 'weight', label: 'Weight', type: 'number', min: 0, default: 1, hint: 'Share among channels of the same priority.' },
      { name: 'status', label: 'Status', type: 'select', numeric: true, options: [[1, 'Enabled'], [2, 'Disabled']], default: 1 },
      { name: 'connect_timeout_ms', label: 'Connect timeout (ms)', type: 'number', min: 100, hint: 'Empty keeps the default.' },
      { name: 'first_byte_timeout_ms', label: 'First byte timeout (ms)', type: 'number', min: 100 },
      { name: 'idle_timeout_ms', label: 'Idle timeout (ms)', type: 'number', min: 100 },
    ]),
    toBody: (body, item) => {
      if (item && !body.key) delete body.key;
      return body;
    },
    columns: [
      { label: 'ID', class: 'num', render: (c) => String(c.id) },
      { label: 'Name', render: (c) => h('strong', { text: c.name }) },
      { label: 'Type', render: (c) => c.type },
      { label: 'Base URL', render: (c) => h('code', { text: c.base_url || '—' }) },
      { label: 'Models', render: (c) => (c.models || []).join(', ') || '—' },
      { label: 'Groups', render: (c) => (c.groups || []).join(', ') || '—' },
      { label: 'Priority', class: 'num', render: (c) => `${c.priority ?? 0} · w${c.weight ?? 1}` },
      { label: 'Status', render: (c) => statusBadge(c.status, CHANNEL_STATUS) },
      { label: 'Health', render: health },
    ],
    rowActions: (channel, reload) => [
      button('Test', async (event) => {
        const target = event.currentTarget;
        const result = target.closest('tr').querySelector('.test-result');
        target.disabled = true;
        result.className = 'test-result small';
        result.textContent = 'Testing…';
        let text;
        let ok = false;
        try {
          const data = await api.post(`/api/channel/${channel.id}/test`);
          ok = Boolean(data && data.ok);
          text = ok ? `Test OK · ${data.model} · ${data.time_ms} ms` : `Test failed · ${data.model} · ${data.time_ms} ms`;
        } catch (error) {
          text = `Test failed: ${error.message}`;
        }
        toast(`Channel ${channel.name}: ${ok ? 'test passed' : 'test failed'}`);
        await reload();
        // the reloaded row shows the new health; the test's own answer goes under it
        const row = container.querySelector(`tr[data-id="${channel.id}"] .test-result`);
        if (row) {
          row.textContent = text;
          row.className = `test-result small ${ok ? 'health-ok' : 'health-bad'}`;
          row.dataset.ok = String(ok);
        }
      }, { dataset: { action: 'test' }, 'aria-label': `Test ${channel.name}` }),
    ],
  });
}
