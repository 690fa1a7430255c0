// Request example and one-click setup for a token: ready-to-run code with the key and this gateway's
// address (location.origin) filled in, environment variables, and import links for chat clients.
//
// Import links (generic; the client's own address is editable):
// - NextChat / ChatGPT-Next-Web style: `<client>/#/?settings={"key":"sk-...","url":"<gateway>"}`
//   (the JSON URL-encoded). It sits in the URL fragment, so it is never sent to the client's server.
// - Cherry Studio style: `cherrystudio://providers/api-keys?v=1&data=<base64 of {"id","baseUrl","apiKey","name"}>`
//   (base64 then URL-encoded); `id` names the new-api compatible provider type.
import * as api from '../api.js';
import { h, field, copyBox, openDialog, toast, uid } from '../ui.js';

const DEFAULT_CHAT_CLIENT = 'https://app.nextchat.dev';

function pickModels(token) {
  const limits = (token.model_limits || '').split(',').map((m) => m.trim()).filter(Boolean);
  const openai = limits.find((m) => !m.startsWith('claude')) || limits[0] || 'gpt-4o-mini';
  const anthropic = limits.find((m) => m.startsWith('claude')) || 'claude-3-5-haiku-latest';
  return { openai, anthropic };
}

/** The code samples for a key; exported for reuse by the token view. */
export function samples(key, origin, token) {
  const { openai, anthropic } = pickModels(token);
  return {
    curl: [
      `curl ${origin}/v1/chat/completions \\`,
      '  -H "Content-Type: application/json" \\',
      `  -H "Authorization: Bearer ${key}" \\`,
      `  -d '{"model": "${openai}", "messages": [{"role": "user", "content": "Hello!"}]}'`,
    ].join('\n'),
    python: [
      '# pip install openai',
      'from openai import OpenAI',
      '',
      `client = OpenAI(api_key="${key}", base_url="${origin}/v1")`,
      'response = client.chat.completions.create(',
      `    model="${openai}",`,
      '    messages=[{"role": "user", "content": "Hello!"}],',
      ')',
      'print(response.choices[0].message.content)',
    ].join('\n'),
    node: [
      '// npm install openai',
      'import OpenAI from "openai";',
      '',
      `const client = new OpenAI({ apiKey: "${key}", baseURL: "${origin}/v1" });`,
      'const response = await client.chat.completions.create({',
      `  model: "${openai}",`,
      '  messages: [{ role: "user", content: "Hello!" }],',
      '});',
      'console.log(response.choices[0].message.content);',
    ].join('\n'),
    anthropic: [
      '# pip install anthropic',
      'import anthropic',
      '',
      `client = anthropic.Anthropic(api_key="${key}", base_url="${origin}")`,
      'message = client.messages.create(',
      `    model="${anthropic}",`,
      '    max_tokens=1024,',
      '    messages=[{"role": "user", "content": "Hello!"}],',
      ')',
      'print(message.content[0].text)',
    ].join('\n'),
    anthropicCurl: [
      `curl ${origin}/v1/messages \\`,
      '  -H "Content-Type: application/json" \\',
      `  -H "x-api-key: ${key}" \\`,
      '  -H "anthropic-version: 2023-06-01" \\',
      `  -d '{"model": "${anthropic}", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello!"}]}'`,
    ].join('\n'),
    env: [
      `export OPENAI_API_KEY="${key}"`,
      `export OPENAI_BASE_URL="${origin}/v1"`,
      `export ANTHROPIC_API_KEY="${key}"`,
      `export ANTHROPIC_BASE_URL="${origin}"`,
    ].join('\n'),
    envPowerShell: [
      `$env:OPENAI_API_KEY = "${key}"`,
      `$env:OPENAI_BASE_URL = "${origin}/v1"`,
      `$env:ANTHROPIC_API_KEY = "${key}"`,
      `$env:ANTHROPIC_BASE_URL = "${origin}"`,
    ].join('\n'),
  };
}

/** NextChat / ChatGPT-Next-Web style import link. */
export function nextChatLink(clientUrl, key, origin) {
  const base = clientUrl.replace(/\/+$/, '');
  return `${base}/#/?settings=${encodeURIComponent(JSON.stringify({ key, url: origin }))}`;
}

/** Cherry Studio style import link. */
export function cherryStudioLink(key, origin) {
  const config = { id: 'new-api', baseUrl: origin, apiKey: key, name: 'Sluice' };
  return `cherrystudio://providers/api-keys?v=1&data=${encodeURIComponent(btoa(JSON.stringify(config)))}`;
}

/** Tabs with roving focus (arrow keys, Home, End). `tabs`: [{id, label, panel}]. */
export function tabs(items, label) {
  const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': label });
  const panels = h('div', { class: 'tab-panels' });
  const buttons = items.map((item, index) => {
    const tabId = uid('tab');
    const panelId = uid('panel');
    const tab = h('button', { type: 'button', role: 'tab', id: tabId, class: 'tab', 'aria-controls': panelId,
      'aria-selected': index === 0 ? 'true' : 'false', tabindex: index === 0 ? '0' : '-1', dataset: { tab: item.id }, text: item.label });
    const panel = h('div', { role: 'tabpanel', id: panelId, class: 'tab-panel', 'aria-labelledby': tabId, tabindex: '0', hidden: index !== 0, dataset: { panel: item.id } }, item.panel);
    panels.append(panel);
    return { tab, panel };
  });
  const select = (index, focus = true) => {
    buttons.forEach(({ tab, panel }, i) => {
      tab.setAttribute('aria-selected', String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
      panel.hidden = i !== index;
    });
    if (focus) buttons[index].tab.focus();
  };
  buttons.forEach(({ tab }, index) => {
    tab.addEventListener('click', () => select(index));
    tab.addEventListener('keydown', (event) => {
      const last = buttons.length - 1;
      const next = { ArrowRight: index === last ? 0 : index + 1, ArrowLeft: index === 0 ? last : index - 1, Home: 0, End: last }[event.key];
      if (next !== undefined) {
        event.preventDefault();
        select(next);
      }
    });
    list.append(tab);
  });
  return h('div', { class: 'tabset' }, list, panels);
}

/** Opens the request example dialog of a token (fetches its full key). */
export async function openExamples(token, { keyPath } = {}) {
  let key = token.key && !token.key.includes('*') ? token.key : '';
  if (!key) {
    try {
      key = (await api.post(keyPath || `/api/token/${token.id}/key`)).key;
    } catch (error) {
      toast(error.message);
      return null;
    }
  }
  const origin = location.origin;
  const code = samples(key, origin, token);
  const clientUrl = h('input', { type: 'url', name: 'client-url', value: DEFAULT_CHAT_CLIENT, autocomplete: 'url' });
  const nextChat = h('a', { class: 'btn btn-secondary', target: '_blank', rel: 'noopener noreferrer', id: 'nextchat-link', text: 'Open in NextChat' });
  const nextChatText = copyBox('', 'NextChat import link');
  const updateNextChat = () => {
    const link = nextChatLink(clientUrl.value || DEFAULT_CHAT_CLIENT, key, origin);
    nextChat.href = link;
    nextChatText.querySelector('input').value = link;
  };
  clientUrl.addEventListener('input', updateNextChat);
  updateNextChat();
  const cherry = cherryStudioLink(key, origin);

  const content = h('div', { class: 'examples', id: 'examples' },
    h('p', { class: 'muted', text: `Ready-to-run calls with the key “${token.name}” and this gateway (${origin}). OpenAI SDKs use ${origin}/v1; the Anthropic SDK uses ${origin}.` }),
    tabs([
      { id: 'curl', label: 'curl', panel: copyBox(code.curl, 'curl command', { multiline: true }) },
      { id: 'python', label: 'Python', panel: copyBox(code.python, 'Python code', { multiline: true }) },
      { id: 'node', label: 'Node.js', panel: copyBox(code.node, 'Node.js code', { multiline: true }) },
      { id: 'anthropic', label: 'Anthropic SDK', panel: h('div', {}, copyBox(code.anthropic, 'Anthropic SDK code', { multiline: true }), copyBox(code.anthropicCurl, 'Anthropic curl command', { multiline: true })) },
      { id: 'env', label: 'Environment', panel: h('div', {},
        h('p', { class: 'hint', text: 'Export these and most tools and SDKs pick up the key and the gateway by themselves.' }),
        copyBox(code.env, 'Shell exports', { multiline: true }),
        copyBox(code.envPowerShell, 'PowerShell', { multiline: true })) },
      { id: 'clients', label: 'Chat clients', panel: h('div', {},
        h('p', { class: 'hint', text: 'One-click setup: the link opens the client with this key and this gateway filled in.' }),
        copyBox(origin, 'API address (OpenAI-compatible clients)'),
        copyBox(key, 'API key'),
        h('h3', { text: 'NextChat (ChatGPT-Next-Web)' }),
        field('Address of your NextChat', clientUrl, 'Any deployment that takes ?settings={"key","url"} in its link.'),
        nextChatText, h('p', {}, nextChat),
        h('h3', { text: 'Cherry Studio' }),
        copyBox(cherry, 'Cherry Studio import link'),
        h('p', {}, h('a', { class: 'btn btn-secondary', href: cherry, id: 'cherry-link', text: 'Open in Cherry Studio' }))) },
    ], 'Example language'));
  return openDialog(`Request example · ${token.name}`, content, { wide: true });
}
