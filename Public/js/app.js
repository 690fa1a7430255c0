// The Sluice console: hash routing (#/tokens, #/groups, ...), the session, and the navigation.
import * as api from './api.js';
import { h, notice } from './ui.js';

const routes = [
  { path: '/login', page: 'auth', view: 'login', public: true, title: 'Log in' },
  { path: '/register', page: 'auth', view: 'register', public: true, title: 'Create an account' },
  { path: '/token-login', page: 'auth', view: 'token', public: true, title: 'Token login' },
  { path: '/token', page: 'tokenview', tokenSession: true, title: 'Your token' },
  { path: '/tokens', page: 'tokens', title: 'API Tokens' },
  { path: '/tokens/:id', page: 'tokendetail', title: 'Token usage and logs' },
  { path: '/usage', page: 'usage', title: 'Usage and logs' },
  { path: '/groups', page: 'groups', title: 'Groups' },
  { path: '/redeem', page: 'redeem', title: 'Redeem a code' },
  { path: '/admin/users', page: 'admin-users', admin: true, title: 'Users' },
  { path: '/admin/groups', page: 'admin-groups', admin: true, title: 'Manage groups' },
  { path: '/admin/models', page: 'admin-models', admin: true, title: 'Models and prices' },
  { path: '/admin/channels', page: 'admin-channels', admin: true, title: 'Channels' },
  { path: '/admin/redemptions', page: 'admin-redemptions', admin: true, title: 'Redemption codes' },
  { path: '/admin/logs', page: 'admin-logs', admin: true, title: 'All logs' },
];

const userNav = [
  ['/tokens', 'API Tokens'],
  ['/usage', 'Usage & logs'],
  ['/groups', 'Groups'],
  ['/redeem', 'Redeem'],
];
const adminNav = [
  ['/admin/users', 'Users'],
  ['/admin/groups', 'Groups'],
  ['/admin/models', 'Models & prices'],
  ['/admin/channels', 'Channels'],
  ['/admin/redemptions', 'Redemption codes'],
  ['/admin/logs', 'All logs'],
];

/** Who is signed in: a user, a token session (token login), or nobody. */
export const session = { user: null, token: null, loaded: false };

export async function loadSession() {
  session.user = null;
  session.token = null;
  try {
    session.user = await api.get('/api/user/self');
  } catch (error) {
    if (error.status === 403) {
      try {
        session.token = await api.get('/api/token/self');
      } catch {
        session.token = null;
      }
    }
  }
  session.loaded = true;
  renderChrome();
}

export function isAdmin() {
  return Boolean(session.user && session.user.role >= 10);
}

export function navigate(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = `#${path}`;
}

export async function logout() {
  try {
    await api.get('/api/user/logout');
  } catch {
    // the session is gone either way
  }
  session.user = null;
  session.token = null;
  renderChrome();
  navigate('/login');
}

function match(path) {
  for (const candidate of routes) {
    const names = [];
    const pattern = new RegExp(`^${candidate.path.replace(/:(\w+)/g, (_, name) => { names.push(name); return '([^/]+)'; })}$`);
    const found = pattern.exec(path);
    if (found) {
      const params = {};
      names.forEach((name, index) => { params[name] = decodeURIComponent(found[index + 1]); });
      return { route: candidate, params };
    }
  }
  return null;
}

function currentPath() {
  const raw = location.hash.replace(/^#/, '') || '/';
  return raw.split('?')[0] || '/';
}

function homePath() {
  if (session.user) return '/tokens';
  if (session.token) return '/token';
  return '/login';
}

function navLink(path, label) {
  const active = currentPath() === path || currentPath().startsWith(`${path}/`);
  return h('li', {}, h('a', { href: `#${path}`, 'aria-current': active ? 'page' : null, text: label }));
}

/** Header account area and the side navigation, according to the session. */
export function renderChrome() {
  const nav = document.getElementById('site-nav');
  const account = document.getElementById('account');
  const toggle = document.getElementById('nav-toggle');
  nav.replaceChildren();
  account.replaceChildren();
  if (session.user) {
    const user = session.user;
    nav.append(h('h2', { class: 'nav-heading', text: 'Console' }), h('ul', {}, userNav.map(([p, l]) => navLink(p, l))));
    if (isAdmin()) nav.append(h('h2', { class: 'nav-heading', text: 'Administration' }), h('ul', {}, adminNav.map(([p, l]) => navLink(p, l))));
    account.append(
      h('span', { class: 'account-name', text: user.display_name || user.username }),
      h('button', { type: 'button', class: 'btn btn-ghost', id: 'logout-button', onclick: logout, text: 'Log out' }));
  } else if (session.token) {
    nav.append(h('ul', {}, navLink('/token', 'Your token')));
    account.append(
      h('span', { class: 'account-name', text: `Token: ${session.token.name}` }),
      h('button', { type: 'button', class: 'btn btn-ghost', id: 'logout-button', onclick: logout, text: 'Log out' }));
  }
  const signedIn = Boolean(session.user || session.token);
  nav.hidden = !signedIn;
  toggle.hidden = !signedIn;
  document.body.classList.toggle('signed-in', signedIn);
}

let renderCount = 0;

async function route() {
  const main = document.getElementById('main');
  const path = currentPath();
  const found = match(path);
  if (!found) {
    navigate(homePath());
    return;
  }
  const { route: target, params } = found;
  if (!target.public && !session.user && !session.token) return navigate('/login');
  if (target.tokenSession && !session.token) return navigate(homePath());
  if (!target.tokenSession && !target.public && !session.user) return navigate(homePath());
  if (target.public && (session.user || session.token) && target.view !== 'token') return navigate(homePath());
  if (target.admin && !isAdmin()) {
    main.replaceChildren(notice('This page needs an administrator account.', 'error'));
    return;
  }
  const count = ++renderCount;
  document.title = `${target.title} · Sluice`;
  closeMobileNav();
  renderChrome();
  const container = h('div', { class: 'page', dataset: { page: target.page } });
  try {
    const module = await import(`./pages/${target.page}.js`);
    if (count !== renderCount) return;
    main.replaceChildren(container);
    await module.render(container, { params, view: target.view, session, navigate, loadSession });
  } catch (error) {
    if (count !== renderCount) return;
    main.replaceChildren(container);
    container.append(notice(error.message || String(error), 'error'));
  }
  if (count !== renderCount) return;
  const heading = main.querySelector('h1');
  if (heading && !main.contains(document.activeElement)) heading.focus({ preventScroll: false });
}

function closeMobileNav() {
  document.body.classList.remove('nav-open');
  document.getElementById('nav-toggle').setAttribute('aria-expanded', 'false');
}

function setupNavToggle() {
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const open = !document.body.classList.contains('nav-open');
    document.body.classList.toggle('nav-open', open);
    toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      const first = document.querySelector('#site-nav a');
      if (first) first.focus();
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.body.classList.contains('nav-open')) {
      closeMobileNav();
      toggle.focus();
    }
  });
}

window.addEventListener('sluice:unauthorized', () => {
  if (session.user || session.token) {
    session.user = null;
    session.token = null;
    renderChrome();
    navigate('/login');
  }
});
window.addEventListener('hashchange', route);

setupNavToggle();
await loadSession();
await route();
